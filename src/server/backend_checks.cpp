#include "server/backend_checks.hpp"

#include <algorithm>
#include <cctype>

#include <arpa/inet.h>
#include <boost/asio/ip/address.hpp>

#include "net/http_client.hpp"

namespace dynaseal::server {
namespace {

bool link_local(const boost::asio::ip::address& a) {
  if (a.is_v4()) {
    const auto bytes = a.to_v4().to_bytes();
    return bytes[0] == 169 && bytes[1] == 254;
  }
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) {
    return link_local(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6));
  }
  // fe80::/10, and AWS's IPv6 metadata endpoint fd00:ec2::254.
  const auto bytes = v6.to_bytes();
  const bool fe80 = bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80;
  return fe80 || v6 == boost::asio::ip::make_address_v6("fd00:ec2::254");
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::optional<std::string> callback_url_problem(std::string_view url, bool allow_link_local) {
  auto target = net::parse_upstream_url(url);
  if (!target || target->host.empty()) {
    return "expected http://host[:port][/path] or https://...";
  }
  if (allow_link_local) return std::nullopt;
  std::string host = lower(target->host);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  while (host.ends_with('.')) host.pop_back();
  for (std::string_view name : {"metadata.google.internal", "metadata", "instance-data"}) {
    if (host == name) return "a cloud metadata host (allow_link_local_callbacks to allow it)";
  }
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  in_addr legacy{};
  if (ec && ::inet_aton(host.c_str(), &legacy) != 0) {
    // The resolver also takes the old numeric forms ("2852039166", "0xa9.0xfe.43518"), which
    // inet_pton does not: read them as it would.
    address = boost::asio::ip::address_v4(ntohl(legacy.s_addr));
    ec = {};
  }
  if (!ec && link_local(address)) {
    return "a link-local address (allow_link_local_callbacks to allow it)";
  }
  return std::nullopt;
}

}  // namespace dynaseal::server
