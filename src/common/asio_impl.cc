// The one translation unit that compiles Asio (separate compilation). Asio's SSL support and Beast
// are compiled in http/beast_impl.cc.
#include <boost/asio/impl/src.hpp>
