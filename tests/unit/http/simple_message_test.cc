#include "http/simple_message.h"

#include <gtest/gtest.h>

#include <boost/beast/http/parser.hpp>

#include <cctype>
#include <iterator>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace layer::http {
namespace {

constexpr size_t kHeadLimit = 64 << 10;
constexpr uint64_t kBodyLimit = 1 << 20;

// What Beast's parser (as the server or the upstream client configures it) makes of `in`: the
// message, or nullopt when it fails or needs more bytes; `used` the bytes it took, head and body.
template <typename Parser>
std::optional<typename Parser::value_type> BeastParse(std::string_view in, size_t* used) {
  Parser parser;
  parser.header_limit(static_cast<std::uint32_t>(kHeadLimit));
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t n = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
  if (ec || !parser.is_done()) return std::nullopt;
  *used = n;
  return parser.release();
}

// Both parsers agree on what requests and responses share: version, fields (id, spelling, value,
// order), body and keep-alive.
template <typename Message>
void ExpectSameFields(const Message& a, const Message& b) {
  EXPECT_EQ(a.version(), b.version());
  EXPECT_EQ(a.body(), b.body());
  EXPECT_EQ(a.keep_alive(), b.keep_alive());
  EXPECT_EQ(a.has_content_length(), b.has_content_length());
  std::vector<std::tuple<Field, std::string, std::string>> fa, fb;
  for (const auto& f : a) fa.emplace_back(f.name(), f.name_string(), f.value());
  for (const auto& f : b) fb.emplace_back(f.name(), f.name_string(), f.value());
  EXPECT_EQ(fa, fb);
}

// ...and on the request line, or the status line.
void ExpectSame(const Request& a, const Request& b) {
  EXPECT_EQ(a.method(), b.method());
  EXPECT_EQ(a.method_string(), b.method_string());
  EXPECT_EQ(a.target(), b.target());
  ExpectSameFields(a, b);
}
void ExpectSame(const Response& a, const Response& b) {
  EXPECT_EQ(a.result_int(), b.result_int());
  EXPECT_EQ(a.reason(), b.reason());
  ExpectSameFields(a, b);
}

size_t ParseSimple(std::string_view in, Request& out) {
  return ParseSimpleRequest(in, kHeadLimit, kBodyLimit, out);
}
size_t ParseSimple(std::string_view in, Response& out) {
  return ParseSimpleResponse(in, kHeadLimit, kBodyLimit, out);
}

// Accepted, with what Beast makes of the same bytes.
template <typename Parser>
void ExpectAcceptedAs(const std::string& in) {
  SCOPED_TRACE(in);
  typename Parser::value_type simple;
  const size_t taken = ParseSimple(in, simple);
  size_t used = 0;
  auto beast = BeastParse<Parser>(in, &used);
  ASSERT_TRUE(beast.has_value());
  ASSERT_GT(taken, 0u);
  EXPECT_EQ(taken, used);
  ExpectSame(simple, *beast);
}
void ExpectAccepted(const std::string& in) { ExpectAcceptedAs<RequestParser>(in); }
void ExpectResponseAccepted(const std::string& in) { ExpectAcceptedAs<ResponseParser>(in); }


void ExpectDeclined(const std::string& in, size_t head_limit = kHeadLimit,
                    uint64_t body_limit = kBodyLimit) {
  SCOPED_TRACE(in);
  Request simple;
  EXPECT_EQ(ParseSimpleRequest(in, head_limit, body_limit, simple), 0u);
}

const std::string kQuery =
    R"({"rank_by":["vector","ANN",[0.1,0.2,0.3]],"top_k":10,"include_attributes":["text"]})";

TEST(SimpleRequest, TheBenchmarkQueryAndItsLikes) {
  ExpectAccepted("POST /v2/namespaces/cmp/query HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                 "Content-Length: " + std::to_string(kQuery.size()) +
                 "\r\nContent-Type: application/json\r\nAuthorization: Bearer bench\r\n\r\n" +
                 kQuery);
  // A Turbopuffer SDK's request: many fields, x-stainless-*, gzip accepted.
  ExpectAccepted("POST /v2/namespaces/ns/query?stainless=1 HTTP/1.1\r\n"
                 "accept: application/json\r\ncontent-type: application/json\r\n"
                 "user-agent: Turbopuffer/JS 0.5.13\r\nx-stainless-lang: js\r\n"
                 "x-stainless-package-version: 0.5.13\r\nx-stainless-retry-count: 0\r\n"
                 "authorization: Bearer tpuf_abc\r\naccept-encoding: gzip,deflate\r\n"
                 "Host: localhost:9000\r\nConnection: keep-alive\r\ncontent-length: 2\r\n\r\n{}");
  ExpectAccepted("GET /v2/namespaces/ns/documents/1 HTTP/1.1\r\nHost: h\r\n\r\n");
  ExpectAccepted("GET /health HTTP/1.0\r\n\r\n");
  ExpectAccepted("GET /health HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  ExpectAccepted("DELETE /v2/namespaces/x HTTP/1.1\r\nConnection: close\r\n\r\n");
  ExpectAccepted("HEAD /v1/namespaces/x HTTP/1.1\r\n\r\n");
  ExpectAccepted("PATCH /v1/namespaces/x/metadata HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
}

TEST(SimpleRequest, FieldSpellingsBlanksAndRepeats) {
  // Case kept as sent, surrounding blanks trimmed, inner blanks kept, empty values, repeats in
  // order, unknown names.
  ExpectAccepted("POST /q HTTP/1.1\r\nCONTENT-TYPE:application/json\r\n"
                 "X-Odd:   a  b\t \r\nx-empty:\r\nx-blank: \t \r\nAccept: a\r\nAccept: b\r\n"
                 "x-request-id: abc\r\ncOnTeNt-LeNgTh: 3\r\n\r\nxyz");
  ExpectAccepted("GET /a?b=c&d=%20e HTTP/1.1\r\nX-Tab:\tv\t\r\n\r\n");
  ExpectAccepted("POST /q HTTP/1.1\r\nContent-Length: 007\r\n\r\n1234567");
  ExpectAccepted("POST /q HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n1");
}

TEST(SimpleRequest, EveryFieldNameGetsBeastsFieldInAnySpelling) {
  // Every name Beast knows, lower case, upper case and as registered, and a few it does not.
  // (the last ones are as long as a common name and differ from it in a byte that is not a letter)
  std::vector<std::string> names = {"x-request-id", "x-stainless-lang", "hosts",       "contenttype",
                                    "content_type", "content_length",   "user_agent", "hos^",
                                    "Accept-Encodin~"};
  for (unsigned f = 1; f <= static_cast<unsigned>(Field::xref); ++f) {
    const std::string name(bhttp::to_string(static_cast<Field>(f)));
    if (name.empty() || name == "<unknown-field>") continue;
    std::string lower = name, upper = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    names.insert(names.end(), {name, lower, upper});
  }
  for (const std::string& name : names) {
    // Fields whose values the parser checks (lengths, codings, upgrades) get acceptable values.
    std::string value = "v";
    const Field want = bhttp::string_to_field(name);
    if (want == Field::content_length) value = "0";
    if (want == Field::connection || want == Field::proxy_connection) value = "keep-alive";
    if (want == Field::transfer_encoding || want == Field::upgrade) continue;  // declined
    const std::string text = "GET / HTTP/1.1\r\n" + name + ": " + value + "\r\n\r\n";
    Request req;
    ASSERT_EQ(ParseSimpleRequest(text, 8192, 1 << 20, req), text.size()) << name;
    ASSERT_EQ(std::distance(req.begin(), req.end()), 1) << name;
    EXPECT_EQ(req.begin()->name(), want) << name;
    EXPECT_EQ(req.begin()->name_string(), name);
  }
}

TEST(SimpleRequest, TakesOneRequestOfAPipeline) {
  const std::string one = "POST /q HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
  const std::string two = one + "GET /health HTTP/1.1\r\n\r\n";
  Request simple;
  EXPECT_EQ(ParseSimpleRequest(two, kHeadLimit, kBodyLimit, simple), one.size());
  EXPECT_EQ(simple.body(), "{}");
}

TEST(SimpleRequest, DeclinesWhatIsNotHereYet) {
  const std::string full = "POST /q HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd";
  for (size_t cut = 0; cut < full.size(); ++cut) ExpectDeclined(full.substr(0, cut));
}

TEST(SimpleRequest, DeclinesTheMalformedAndTheUnusual) {
  // Beast answers most of these with 400; the others (a token list in Connection, a method it
  // has no name for, a chunked body) it parses itself. The fast path leaves them all to Beast.
  const std::vector<std::string> bad = {
      "POST /q HTTP/1.1\r\nX-Fold: a\r\n b\r\n\r\n",           // obs-fold
      "POST /q HTTP/1.1\r\nX-Bad : a\r\n\r\n",                 // blank before the colon
      "POST /q HTTP/1.1\r\nX\x01: a\r\n\r\n",                  // control byte in a name
      "POST /q HTTP/1.1\r\nX: a\x01\r\n\r\n",                  // control byte in a value
      "POST /q HTTP/1.1\r\nX: a\nY: b\r\n\r\n",                // bare LF
      "POST /q HTTP/1.1\nX: a\r\n\r\n",                        // bare LF after the start line
      "POST /q HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
      "POST /q HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "POST /q HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST /q HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n12",
      "POST /q HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "POST /q HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
      "POST /q HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      "GET /q HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      "GET /q HTTP/1.1\r\nConnection: keep-alive, x\r\n\r\n",
      "GET /q HTTP/1.1\r\nProxy-Connection: foo\r\n\r\n",
      "GET /q HTTP/2.0\r\n\r\n",
      "GET /q HTTP/1.2\r\n\r\n",
      "GET /q http/1.1\r\n\r\n",
      "GET  /q HTTP/1.1\r\n\r\n",
      "GET /q  HTTP/1.1\r\n\r\n",
      "GET /q\x7f HTTP/1.1\r\n\r\n",
      "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",                        // obs-text in the target
      "GET /q HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",              // obs-text in a value
      "BREW /pot HTTP/1.1\r\n\r\n",                            // a method Beast has no name for
      "\r\nGET /q HTTP/1.1\r\n\r\n",                           // a leading empty line
      " GET /q HTTP/1.1\r\n\r\n",
      "GET /q HTTP/1.1\r\n: v\r\n\r\n",                        // empty name
      "GET /q HTTP/1.1\r\nX: a\r\r\n\r\n",
  };
  for (const std::string& in : bad) ExpectDeclined(in);
}

TEST(SimpleRequest, DeclinesWhatIsOverTheLimits) {
  std::string big = "GET /q HTTP/1.1\r\nX-Big: " + std::string(200, 'a') + "\r\n\r\n";
  ExpectDeclined(big, /*head_limit=*/100);
  Request simple;
  EXPECT_EQ(ParseSimpleRequest(big, big.size(), kBodyLimit, simple), big.size());
  ExpectDeclined(big, big.size() - 1);
  ExpectDeclined("POST /q HTTP/1.1\r\nContent-Length: 11\r\n\r\n01234567890", kHeadLimit,
                 /*body_limit=*/10);
}

// Every one-byte change of `seed` to a delimiter, a control byte, obs-text, a letter or a digit:
// whatever the fast parser accepts, Beast's `Parser` accepts with the same result. Returns how
// many changes the fast parser accepted.
template <typename Parser>
size_t CheckMutations(const std::string& seed) {
  const std::string alphabet = std::string("\r\n :\t\x01\x7f\x80" "AaZz0159-/?%") + '\0';
  size_t accepted = 0;
  for (size_t i = 0; i < seed.size(); ++i) {
    for (char c : alphabet) {
      std::string in = seed;
      in[i] = c;
      typename Parser::value_type simple;
      const size_t taken = ParseSimple(in, simple);
      if (taken == 0) continue;
      ++accepted;
      size_t used = 0;
      auto beast = BeastParse<Parser>(in, &used);
      EXPECT_TRUE(beast.has_value()) << testing::PrintToString(in);
      if (!beast) continue;
      EXPECT_EQ(taken, used) << testing::PrintToString(in);
      ExpectSame(simple, *beast);
    }
  }
  return accepted;
}

TEST(SimpleRequest, AgreesWithBeastOnMutations) {
  const std::vector<std::string> seeds = {
      "POST /v2/namespaces/cmp/query HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\n"
      "Content-Type: application/json\r\nAuthorization: Bearer b\r\n\r\n{}",
      "GET /v1/namespaces?cursor=a HTTP/1.0\r\nConnection: close\r\nX-A:  b \r\n\r\n",
  };
  size_t accepted = 0;
  for (const std::string& seed : seeds) {
    accepted += CheckMutations<RequestParser>(seed);
  }
  EXPECT_GT(accepted, 100u);
}

// ------------------------------------------------------------------------------------------------
// Responses
// ------------------------------------------------------------------------------------------------

void ExpectResponseDeclined(const std::string& in) {
  SCOPED_TRACE(in);
  Response simple;
  EXPECT_EQ(ParseSimpleResponse(in, kHeadLimit, kBodyLimit, simple), 0u);
}

TEST(SimpleResponse, PlainAnswers) {
  ExpectResponseAccepted("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: " + std::to_string(kQuery.size()) + "\r\n\r\n" + kQuery);
  ExpectResponseAccepted("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  // Turbopuffer's kind of answer: many fields, retry hints, a custom reason, an odd code.
  ExpectResponseAccepted("HTTP/1.1 429 Too Many Requests\r\ndate: Thu, 03 Dec 2026 12:00:00 GMT\r\n"
                         "content-type: application/json\r\nretry-after: 2\r\n"
                         "retry-after-ms: 1500\r\nx-turbopuffer-request-id: abc\r\n"
                         "Vary: a\r\nVary: b\r\ncontent-length: 2\r\nConnection: keep-alive\r\n\r\n{}");
  ExpectResponseAccepted("HTTP/1.1 418 I'm a teapot\r\nContent-Length: 1\r\n\r\nx");
  ExpectResponseAccepted("HTTP/1.1 599 Whatever It Says\r\nContent-Length: 1\r\n\r\nx");
  ExpectResponseAccepted("HTTP/1.1 200 Fine\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
  ExpectResponseAccepted("HTTP/1.0 202 Accepted\r\nContent-Encoding: gzip\r\n"
                         "Content-Length: 3\r\n\r\n\x1f\x8b\x08");
  ExpectResponseAccepted("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://up/v2/x\r\n"
                         "Content-Length: 0\r\n\r\n");
}

TEST(SimpleResponse, DeclinesWhatBeastParsesItself) {
  const std::string full = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd";
  for (size_t cut = 0; cut < full.size(); ++cut) ExpectResponseDeclined(full.substr(0, cut));
  const std::vector<std::string> other = {
      "HTTP/1.1 200 OK\r\n\r\nbody to the end",                           // no length
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
      "HTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",                       // no reason
      "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",                      // empty reason
      "HTTP/1.1 200 OK \r\nContent-Length: 0\r\n\r\n",                   // trailing blank
      "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",       // obs-fold
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
  };
  for (const std::string& in : other) ExpectResponseDeclined(in);
}

TEST(SimpleResponse, AgreesWithBeastOnMutations) {
  const std::string seed =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-T:  a \r\n"
      "Content-Length: 2\r\n\r\n{}";
  const size_t accepted = CheckMutations<ResponseParser>(seed);
  EXPECT_GT(accepted, 50u);
}

}  // namespace
}  // namespace layer::http
