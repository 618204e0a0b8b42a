#include "http/response_writer.h"

#include <gtest/gtest.h>

#include <boost/beast/http/write.hpp>

#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace layer::http {
namespace {

// What Beast's serializer writes for the head alone, and for the whole message.
std::string BeastHead(const Response& res) {
  std::ostringstream os;
  os << res.base();
  return os.str();
}
std::string BeastMessage(const Response& res) {
  std::ostringstream os;
  os << res;
  return os.str();
}

std::string Head(const Response& res) {
  std::string out = "stale bytes from the previous response";
  SerializeResponseHead(res, out);
  return out;
}

TEST(ResponseWriter, OkWithBodyIsByteExact) {
  Response res{Code::ok, 11};
  res.set(Field::content_type, "application/json");
  res.set("x-layer-cache", "hit");
  res.body() = R"({"id":1,"attributes":{"a":"b"}})";
  PrepareResponse(res, /*keep_alive=*/true, "req-1", /*head_request=*/false);
  const std::string head = Head(res);
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/json\r\n"
            "x-layer-cache: hit\r\n"
            "x-request-id: req-1\r\n"
            "Content-Length: 31\r\n"
            "\r\n");
  EXPECT_EQ(head, BeastHead(res));
  EXPECT_EQ(head + res.body(), BeastMessage(res));
}

TEST(ResponseWriter, NoContentAndNotModifiedHaveNoBody) {
  for (Code code : {Code::no_content, Code::not_modified}) {
    Response res{code, 11};
    PrepareResponse(res, true, "r", false);
    const std::string head = Head(res);
    // Beast's prepare_payload states the empty body as Content-Length: 0 (as the server always
    // has); nothing follows the blank line.
    const std::string status = code == Code::no_content ? "204 No Content" : "304 Not Modified";
    EXPECT_EQ(head, "HTTP/1.1 " + status + "\r\nx-request-id: r\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(head, BeastMessage(res));
  }
}

TEST(ResponseWriter, KeepAliveVersusClose) {
  Response keep{Code::ok, 11};
  keep.body() = "x";
  PrepareResponse(keep, /*keep_alive=*/true, "a", false);
  EXPECT_EQ(Head(keep), "HTTP/1.1 200 OK\r\nx-request-id: a\r\nContent-Length: 1\r\n\r\n");

  Response close{Code::ok, 11};
  close.body() = "x";
  PrepareResponse(close, /*keep_alive=*/false, "a", false);
  EXPECT_EQ(Head(close),
            "HTTP/1.1 200 OK\r\nConnection: close\r\nx-request-id: a\r\nContent-Length: 1\r\n\r\n");
  EXPECT_EQ(Head(close), BeastHead(close));

  // A handler that asked for close keeps its header, once.
  Response asked{Code::service_unavailable, 11};
  asked.keep_alive(false);
  PrepareResponse(asked, false, "a", false);
  EXPECT_EQ(Head(asked),
            "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nx-request-id: a\r\n"
            "Content-Length: 0\r\n\r\n");

  // HTTP/1.0 answers state keep-alive explicitly.
  Response old{Code::ok, 10};
  PrepareResponse(old, true, "a", false);
  EXPECT_EQ(Head(old),
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nx-request-id: a\r\nContent-Length: 0\r\n"
            "\r\n");
  EXPECT_EQ(Head(old), BeastHead(old));
}

TEST(ResponseWriter, ManyHeadersKeepTheirOrderAndSpelling) {
  Response res{Code::created, 11};
  std::string expected = "HTTP/1.1 201 Created\r\n";
  for (int i = 0; i < 60; ++i) {
    std::string name = (i % 2 ? "X-Upper-" : "x-lower-") + std::to_string(i);
    std::string value = std::to_string(i) + " v" + std::string(static_cast<size_t>(i), 'v');
    res.insert(name, value);
    expected += name + ": " + value + "\r\n";
  }
  res.insert(Field::set_cookie, "a=1");  // repeated fields stay separate lines
  res.insert(Field::set_cookie, "b=2");
  expected += "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n";
  res.set("X-Request-Id", "from-the-handler");  // replaced, and moves to the end
  res.body() = std::string(100000, 'b');
  PrepareResponse(res, true, "minted", false);
  expected += "x-request-id: minted\r\nContent-Length: 100000\r\n\r\n";
  EXPECT_EQ(Head(res), expected);
  EXPECT_EQ(Head(res) + res.body(), BeastMessage(res));
}

TEST(ResponseWriter, ChunkedTransferEncodingIsDroppedForTheSizedBody) {
  Response res{Code::ok, 11};
  res.set(Field::transfer_encoding, "gzip, chunked");
  res.body() = "hello";
  PrepareResponse(res, true, "t", false);
  EXPECT_FALSE(res.chunked());
  // Beast rewrites the remaining codings, which moves the field to the end.
  EXPECT_EQ(Head(res),
            "HTTP/1.1 200 OK\r\nx-request-id: t\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n"
            "\r\n");
  EXPECT_EQ(Head(res) + res.body(), BeastMessage(res));

  Response only{Code::ok, 11};
  only.set(Field::transfer_encoding, "chunked");
  only.body() = "hello";
  PrepareResponse(only, true, "t", false);
  EXPECT_EQ(Head(only), "HTTP/1.1 200 OK\r\nx-request-id: t\r\nContent-Length: 5\r\n\r\n");
}

TEST(ResponseWriter, HeadRequestKeepsTheHandlersLengthOrSaysZero) {
  Response with{Code::ok, 11};
  with.set(Field::content_type, "application/json");
  with.content_length(1234);
  PrepareResponse(with, true, "h", /*head_request=*/true);
  EXPECT_EQ(Head(with),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1234\r\n"
            "x-request-id: h\r\n\r\n");
  EXPECT_EQ(Head(with), BeastHead(with));

  Response without{Code::ok, 11};
  PrepareResponse(without, true, "h", true);
  EXPECT_EQ(Head(without), "HTTP/1.1 200 OK\r\nx-request-id: h\r\nContent-Length: 0\r\n\r\n");
}

TEST(ResponseWriter, CustomAndUnknownReasons) {
  Response custom{Code::ok, 11};
  custom.reason("Fine");
  PrepareResponse(custom, true, "c", false);
  EXPECT_EQ(Head(custom), "HTTP/1.1 200 Fine\r\nx-request-id: c\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(Head(custom), BeastHead(custom));

  Response odd{Code::ok, 11};
  odd.result(299);
  PrepareResponse(odd, true, "c", false);
  EXPECT_EQ(Head(odd), BeastHead(odd));
  EXPECT_TRUE(Head(odd).starts_with("HTTP/1.1 299 "));
}

// The one-step head equals PrepareResponse + SerializeResponseHead wherever it applies, and
// declines exactly the answers PrepareResponse would rewrite.
TEST(ResponseWriter, PreparedHeadEqualsPrepareThenSerialize) {
  struct Case {
    unsigned code;
    unsigned version;
    std::vector<std::pair<std::string, std::string>> fields;
    std::string body;
    bool head_request;
    bool applies;
  };
  const std::vector<Case> cases = {
      {200, 11, {{"Content-Type", "application/json"}}, std::string(1024, 'x'), false, true},
      {200, 11, {}, "", false, true},
      {404, 11, {{"content-type", "text/plain"}, {"X-Turbopuffer-Thing", "a"}}, "nope", false, true},
      {429, 11, {{"Retry-After", "2"}, {"retry-after-ms", "1500"}, {"Retry-After", "3"}}, "{}",
       false, true},
      {418, 11, {{"Content-Type", "application/json"}}, "{}", false, true},
      {599, 11, {{"x-odd", ""}}, "b", false, true},
      {201, 11, {{"Location", "http://gw/v2/namespaces/a"}}, std::string(70000, 'y'), false, true},
      {200, 11, {{"Connection", "close"}}, "b", false, false},
      {200, 11, {{"Content-Length", "1"}}, "b", false, false},
      {200, 11, {{"Transfer-Encoding", "chunked"}}, "b", false, false},
      {200, 11, {{"X-Request-Id", "handler"}}, "b", false, false},
      {200, 11, {}, "b", true, false},
      {200, 10, {}, "b", false, false},
      {204, 11, {}, "", false, false},
      {304, 11, {}, "", false, false},
      {101, 11, {}, "", false, false},
  };
  for (const Case& c : cases) {
    for (bool keep : {true, false}) {
      for (std::string_view id : {"a", "0123456789abcdef01234567"}) {
        Response res;
        res.version(c.version);
        res.result(c.code);
        for (const auto& [name, value] : c.fields) res.insert(name, value);
        res.body() = c.body;
        std::string fast = "stale";
        const bool applied = SerializePreparedResponseHead(res, keep, id, c.head_request, fast);
        EXPECT_EQ(applied, c.applies) << c.code << " keep=" << keep;
        if (!applied) continue;
        Response copy = res;
        PrepareResponse(copy, keep, id, c.head_request);
        EXPECT_EQ(fast, Head(copy)) << c.code << " keep=" << keep;
        EXPECT_EQ(fast, BeastHead(copy));
        EXPECT_EQ(res.body(), c.body);  // untouched
      }
    }
  }
  // A custom reason phrase is kept.
  Response custom{Code::ok, 11};
  custom.reason("Fine");
  std::string fast;
  ASSERT_TRUE(SerializePreparedResponseHead(custom, true, "c", false, fast));
  EXPECT_EQ(fast, "HTTP/1.1 200 Fine\r\nx-request-id: c\r\nContent-Length: 0\r\n\r\n");
}

// The upstream client's one-step head equals set(Host) + keep_alive(true) + content_length() and
// SerializeRequestHead, and declines the requests whose fields those calls rewrite in place.
TEST(ResponseWriter, RequestHeadWithHostAndLengthEqualsSetThenSerialize) {
  struct Case {
    Verb method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> fields;
    std::optional<uint64_t> length;
    bool applies;
  };
  const std::vector<Case> cases = {
      {Verb::post, "/v2/namespaces/ns/query", {{"Content-Type", "application/json"},
                                               {"Authorization", "Bearer k"}}, 83, true},
      {Verb::post, "/v2/namespaces/ns/query?x=1", {{"content-type", "application/json"},
                                                   {"accept-encoding", "gzip"},
                                                   {"x-stainless-lang", "js"},
                                                   {"x-stainless-lang", "py"},
                                                   {"User-Agent", "sdk/1"},
                                                   {"Authorization", "Bearer k"}}, 0, true},
      {Verb::get, "/v1/namespaces", {{"Accept", "application/json"}}, std::nullopt, true},
      {Verb::delete_, "/v2/namespaces/a", {}, std::nullopt, true},
      {Verb::patch, "/v1/namespaces/a/metadata", {{"Prefer", "x"}}, 123456789012ull, true},
      {Verb::post, "/q", {{"Host", "client"}}, 2, false},
      {Verb::post, "/q", {{"Content-Length", "2"}}, 2, false},
      {Verb::post, "/q", {{"Transfer-Encoding", "chunked"}}, 2, false},
      {Verb::get, "/q", {{"Connection", "close"}}, std::nullopt, false},
  };
  for (const Case& c : cases) {
    Request req{c.method, c.target, 11};
    for (const auto& [name, value] : c.fields) req.insert(name, value);
    std::string fast = "stale";
    const bool applied = SerializeRequestHeadWith(req, "up.example:8443", c.length, fast);
    EXPECT_EQ(applied, c.applies) << c.target;
    if (!applied) continue;
    Request copy = req;
    copy.set(Field::host, "up.example:8443");
    copy.keep_alive(true);
    if (c.length) copy.content_length(*c.length);
    std::string slow;
    SerializeRequestHead(copy, slow);
    EXPECT_EQ(fast, slow) << c.target;
    std::ostringstream os;
    os << copy.base();
    EXPECT_EQ(fast, os.str());
  }
  Request old{Verb::get, "/q", 10};
  std::string out;
  EXPECT_FALSE(SerializeRequestHeadWith(old, "h", std::nullopt, out));
}

TEST(ResponseWriter, RequestHeadIsByteExact) {
  Request req{Verb::post, "/v2/namespaces/ns/query?x=1", 11};
  req.set(Field::content_type, "application/json");
  req.set("x-stainless-lang", "js");
  req.set(Field::authorization, "Bearer k");
  req.set(Field::host, "up.example:8443");
  req.keep_alive(true);
  req.body() = R"({"top_k":1})";
  req.content_length(req.body().size());
  std::string head = "stale";
  SerializeRequestHead(req, head);
  EXPECT_EQ(head,
            "POST /v2/namespaces/ns/query?x=1 HTTP/1.1\r\n"
            "Content-Type: application/json\r\n"
            "x-stainless-lang: js\r\n"
            "Authorization: Bearer k\r\n"
            "Host: up.example:8443\r\n"
            "Content-Length: 11\r\n"
            "\r\n");
  std::ostringstream os;
  os << req;
  EXPECT_EQ(head + req.body(), os.str());

  Request get{Verb::get, "/v1/namespaces", 10};
  SerializeRequestHead(get, head);
  std::ostringstream gs;
  gs << get;
  EXPECT_EQ(head, gs.str());
  EXPECT_EQ(head, "GET /v1/namespaces HTTP/1.0\r\n\r\n");
}

}  // namespace
}  // namespace layer::http
