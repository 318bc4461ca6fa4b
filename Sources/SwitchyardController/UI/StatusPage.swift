// The live status page: GET /ui and its script, style sheet and icon, embedded in the binary
// (StatusPageAssets.swift), so the page works from any installation directory and needs no
// build step. The files hold no data and need no token; the page asks for the admin token
// once, keeps it in the tab's sessionStorage (never in a URL) and polls the admin API with
// `Authorization: Bearer` (StatusFeedAPI.swift adds the two feeds it needs).
//
// Every answer carries a Content-Security-Policy that allows only this origin's script,
// style and API (no inline script or style, no frames, no forms posting elsewhere).

import Hummingbird
import Logging
import NIOCore

enum StatusPage {
    struct Asset: Sendable {
        var contentType: String
        var body: String
    }

    static let assets: [String: Asset] = [
        "ui": Asset(contentType: "text/html; charset=utf-8", body: StatusPageAssets.html),
        "ui/app.js": Asset(contentType: "text/javascript; charset=utf-8", body: StatusPageAssets.script),
        "ui/style.css": Asset(contentType: "text/css; charset=utf-8", body: StatusPageAssets.style),
        "ui/icon.svg": Asset(contentType: "image/svg+xml", body: StatusPageAssets.icon),
    ]

    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static let frameOptions = HTTPFields.Element.Name("X-Frame-Options")!
    static let referrerPolicy = HTTPFields.Element.Name("Referrer-Policy")!

    /// The headers every page answer carries.
    static func securityHeaders(contentType: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-cache"
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[frameOptions] = "DENY"
        headers[.xContentTypeOptions] = "nosniff"
        headers[referrerPolicy] = "no-referrer"
        return headers
    }

    static func response(_ asset: Asset) -> Response {
        Response(
            status: .ok, headers: securityHeaders(contentType: asset.contentType),
            body: .init(byteBuffer: ByteBuffer(string: asset.body)))
    }

    /// GET /ui and the page's files; no token.
    static func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        for (path, asset) in assets {
            router.get(RouterPath(path)) { _, _ -> Response in response(asset) }
        }
    }
}

/// Everything the status page and explain add to the router: the page (no token) and,
/// under the token-guarded `/api/v1` group, its feeds and explain.
func addStatusRoutes(
    to router: Router<BasicRequestContext>, api: RouterGroup<BasicRequestContext>, store: ConfigStore, configuration: Configuration,
    logger: Logger
) {
    StatusPage.addRoutes(to: router)
    StatusFeedAPI<BasicRequestContext>(store: store, maxBodySize: configuration.maxBodySize).addRoutes(to: api)
    ExplainAPI<BasicRequestContext>(store: store, maxBodySize: configuration.maxBodySize, logger: logger).addRoutes(to: api)
}
