// The chat page served at "/": one self-contained HTML file (no CDN, nothing to build), compiled into the binary.
#pragma once

namespace ixc::server {

const char* WebUiHtml();
// The page's Content-Security-Policy: its own inline script and styles, requests to this server only, pictures
// from uploads; generated web pages are previewed in a sandboxed frame without access to the page.
const char* WebUiContentSecurityPolicy();

}  // namespace ixc::server
