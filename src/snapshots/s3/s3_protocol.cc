#include "snapshots/s3/s3_protocol.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace layer::snapshots::s3 {
namespace {

bool Unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// The base URL requests go to, and whether the bucket is a path segment.
std::pair<std::string, bool> Base(const Addressing& a) {
  if (!a.endpoint.empty()) {
    std::string e = a.endpoint;
    while (!e.empty() && e.back() == '/') e.pop_back();
    return {e, true};
  }
  if (a.bucket.find('.') != std::string::npos) {
    return {fmt::format("https://s3.{}.amazonaws.com", a.region), true};
  }
  return {fmt::format("https://{}.s3.{}.amazonaws.com", a.bucket, a.region), false};
}

}  // namespace

std::string UriEncode(std::string_view in, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    if (Unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> params) {
  for (auto& [k, v] : params) {
    k = UriEncode(k, false);
    v = UriEncode(v, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

std::string ObjectUrl(const Addressing& a, std::string_view full_key) {
  auto [base, path_style] = Base(a);
  std::string url = std::move(base);
  if (path_style) url += "/" + a.bucket;
  url += "/";
  url += UriEncode(full_key, true);
  return url;
}

std::string ListUrl(const Addressing& a, std::string_view full_prefix,
                    const std::optional<std::string>& continuation_token, int max_keys) {
  auto [base, path_style] = Base(a);
  std::vector<std::pair<std::string, std::string>> q;
  q.emplace_back("list-type", "2");
  q.emplace_back("prefix", std::string(full_prefix));
  q.emplace_back("max-keys", std::to_string(max_keys));
  if (continuation_token) q.emplace_back("continuation-token", *continuation_token);
  std::string url = std::move(base);
  url += path_style ? "/" + a.bucket : std::string("/");
  url += "?";
  url += CanonicalQuery(std::move(q));
  return url;
}

std::string XmlUnescape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] != '&') {
      out.push_back(in[i++]);
      continue;
    }
    size_t semi = in.find(';', i);
    if (semi == std::string_view::npos || semi - i > 12) {
      out.push_back(in[i++]);
      continue;
    }
    std::string_view ent = in.substr(i + 1, semi - i - 1);
    if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() > 1 && ent[0] == '#') {
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string_view digits = ent.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() ||
          cp > 0x10FFFF) {
        out.push_back(in[i++]);
        continue;
      }
      AppendUtf8(cp, &out);
    } else {
      out.push_back(in[i++]);
      continue;
    }
    i = semi + 1;
  }
  return out;
}

std::optional<std::string> XmlElement(std::string_view xml, std::string_view tag) {
  std::string open = fmt::format("<{}>", tag), close = fmt::format("</{}>", tag);
  size_t b = xml.find(open);
  if (b == std::string_view::npos) return std::nullopt;
  b += open.size();
  size_t e = xml.find(close, b);
  if (e == std::string_view::npos) return std::nullopt;
  return XmlUnescape(xml.substr(b, e - b));
}

Result<ListPage> ParseListPage(std::string_view xml) {
  if (xml.find("<ListBucketResult") == std::string_view::npos) {
    return Status::Corruption("s3 list: the answer is not a ListBucketResult");
  }
  ListPage page;
  size_t pos = 0;
  constexpr std::string_view kOpen = "<Contents>", kClose = "</Contents>";
  for (;;) {
    size_t b = xml.find(kOpen, pos);
    if (b == std::string_view::npos) break;
    size_t e = xml.find(kClose, b);
    if (e == std::string_view::npos) return Status::Corruption("s3 list: unterminated <Contents>");
    auto key = XmlElement(xml.substr(b, e - b), "Key");
    if (!key) return Status::Corruption("s3 list: a <Contents> without a <Key>");
    page.keys.push_back(std::move(*key));
    pos = e + kClose.size();
  }
  // Only the result's own IsTruncated: <Contents> blocks hold no such element.
  page.truncated = XmlElement(xml, "IsTruncated").value_or("false") == "true";
  page.next_token = XmlElement(xml, "NextContinuationToken");
  if (page.truncated && (!page.next_token || page.next_token->empty())) {
    return Status::Corruption("s3 list: truncated answer without a NextContinuationToken");
  }
  return page;
}

HttpError ParseHttpError(long http_status, std::string_view body) {
  HttpError e;
  e.http_status = http_status;
  if (body.find("<Error>") != std::string_view::npos) {
    e.code = XmlElement(body, "Code").value_or("");
    e.message = XmlElement(body, "Message").value_or("");
    e.region = XmlElement(body, "Region").value_or("");
  }
  return e;
}

bool IsRetryable(const HttpError& e) {
  if (e.http_status >= 500 || e.http_status == 429) return true;
  if (e.code == "SlowDown" || e.code == "RequestTimeout" || e.code == "InternalError" ||
      e.code == "ServiceUnavailable") {
    return true;
  }
  return e.http_status == 409 &&
         (e.code == "ConditionalRequestConflict" || e.code == "OperationAborted");
}

Status ErrorStatus(std::string_view what, const HttpError& e, int attempts) {
  std::string msg = fmt::format("s3 object store: {}: HTTP {}", what, e.http_status);
  if (!e.code.empty()) msg += " " + e.code;
  if (!e.message.empty()) msg += ": " + e.message;
  if (attempts > 1) msg += fmt::format(" (after {} attempts)", attempts);
  if (e.code == "NoSuchKey" || (e.http_status == 404 && e.code.empty())) {
    return Status::NotFound(std::move(msg));
  }
  if (IsRetryable(e)) return Status::Unavailable(std::move(msg));
  if (e.code == "NoSuchBucket") {
    msg += " (the bucket of --object-store does not exist)";
  } else if (e.code == "PermanentRedirect" || e.code == "AuthorizationHeaderMalformed" ||
             (e.http_status >= 300 && e.http_status < 400)) {
    msg += e.region.empty()
               ? std::string(" (the bucket may be in another region: check --s3-region)")
               : fmt::format(" (the bucket is in {}: set --s3-region {})", e.region, e.region);
  } else if (e.code == "SignatureDoesNotMatch" || e.code == "InvalidAccessKeyId" ||
             e.code == "AccessDenied" || e.code == "ExpiredToken" ||
             e.code == "InvalidToken") {
    msg += " (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)";
  } else if (e.code == "KeyTooLongError") {
    return Status::InvalidArgument(std::move(msg));
  }
  return Status::IoError(std::move(msg), false);
}

std::chrono::milliseconds BackoffDelay(int retry, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max, double unit) {
  if (retry < 1) retry = 1;
  int64_t cap = base.count();
  for (int i = 1; i < retry && cap < max.count(); ++i) cap *= 2;
  cap = std::min(cap, max.count());
  unit = std::clamp(unit, 0.0, 1.0);
  return std::chrono::milliseconds(cap / 2 + static_cast<int64_t>(unit * static_cast<double>(cap - cap / 2)));
}

}  // namespace layer::snapshots::s3
