// The status page's files (StatusPage.swift serves them), embedded in the binary so it works
// from any installation directory: plain HTML, CSS and JavaScript, no build step. Edit them
// here; e2e/test_ui_browser.py runs them in headless Chromium.

enum StatusPageAssets {
    /// The page: markup only; script and style are separate files (the CSP allows no inline code).
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Switchyard status</title>
        <link rel="icon" href="/ui/icon.svg" type="image/svg+xml">
        <link rel="stylesheet" href="/ui/style.css">
        <script src="/ui/app.js" defer></script>
        </head>
        <body>
        <header>
          <h1>Switchyard</h1>
          <div id="summary" class="summary"></div>
          <div class="session">
            <span id="updated" class="muted"></span>
            <button id="logout" type="button" hidden>Forget token</button>
          </div>
        </header>

        <main>
        <section id="login-section" class="login">
          <form id="login" autocomplete="off">
            <h2>Admin token</h2>
            <p class="muted">The page reads the admin API with this token. It is kept in this tab's
              session storage only, and sent in an <code>Authorization</code> header, never in a URL.</p>
            <label for="token">Token</label>
            <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required>
            <button id="login-button" type="submit">Open</button>
            <p id="login-error" class="error" role="alert" hidden></p>
          </form>
        </section>

        <div id="dashboard" hidden>
          <p id="problem" class="banner" role="alert" hidden></p>

          <section>
            <h2>Edges</h2>
            <ul id="edge-problems" class="problems"></ul>
            <div id="edges"></div>
          </section>

          <section>
            <h2>Routes <span id="route-count" class="count"></span></h2>
            <div id="routes"></div>
          </section>

          <section>
            <h2>Upstreams <span id="upstream-count" class="count"></span></h2>
            <p id="prober" class="muted"></p>
            <div id="upstreams"></div>
          </section>

          <section>
            <h2>Recent changes</h2>
            <div id="changes"></div>
          </section>

          <section>
            <h2>Certificates <span id="certificate-count" class="count"></span></h2>
            <div id="certificates"></div>
          </section>
          <section>
            <h2>Streams <span id="stream-count" class="count"></span></h2>
            <div id="streams"></div>
          </section>

          <section>
            <h2>Explain a request</h2>
            <p class="muted">Which route an edge would choose, and why: a live edge's own router answers.</p>
            <form id="explain" class="explain" autocomplete="off">
              <label for="explain-url">URL</label>
              <input id="explain-url" type="text" spellcheck="false" placeholder="http://bbs.test.com/api/x" required>
              <label for="explain-method">Method</label>
              <input id="explain-method" type="text" spellcheck="false" value="GET">
              <label for="explain-headers">Headers, one <code>Name: value</code> a line</label>
              <textarea id="explain-headers" rows="2" spellcheck="false" placeholder="X-Canary: 1"></textarea>
              <button id="explain-button" type="submit">Explain</button>
            </form>
            <div id="explain-result"></div>
          </section>
        </div>
        </main>
        </body>
        </html>
        """#

    /// The page's script: polls the admin API with the session's token and redraws.
    static let script = #"""
        // Switchyard status page: reads the admin API with the token kept in sessionStorage and
        // redraws every POLL_MS. Data is only ever put into the page as text nodes, never as markup.
        "use strict";

        (function () {
          const TOKEN_KEY = "switchyard.admin-token";
          const POLL_MS = 1500;
          const CERT_REFRESH_MS = 60000;
          const CHANGES = 25;
          const BASE_ROUTE_FIELDS = new Set([
            "id", "host", "path", "match", "priority", "upstream", "split", "canary",
            "version", "wildcard", "owner", "source",
          ]);

          let token = null;
          let timer = null;
          let generation = 0;
          let seenVersion = null;
          let certificatesAt = 0;
          const cache = { routes: null, changes: null, certificates: null, streams: null };

          const $ = (id) => document.getElementById(id);

          class AuthError extends Error {}

          // --- DOM helpers: text only ---

          function el(tag, attrs, ...children) {
            const node = document.createElement(tag);
            for (const [key, value] of Object.entries(attrs || {})) {
              if (value === null || value === undefined || value === false) continue;
              if (key === "class") node.className = value;
              else if (key === "title") node.title = value;
              else node.setAttribute(key, String(value));
            }
            for (const child of children.flat()) {
              if (child === null || child === undefined || child === false) continue;
              node.append(child instanceof Node ? child : document.createTextNode(String(child)));
            }
            return node;
          }

          function badge(text, kind, title) {
            return el("span", { class: "badge " + kind, title: title }, text);
          }

          // headers ending in # are numbers (right-aligned); kind names the column widths (style.css)
          function table(headers, rows, empty, kind) {
            if (rows.length === 0) return el("p", { class: "empty" }, empty);
            const head = el("tr", {}, headers.map((h) =>
              el("th", { class: h.endsWith("#") ? "num" : null }, h.replace(/#$/, ""))));
            return el("table", { class: kind || null }, el("thead", {}, head), el("tbody", {}, rows));
          }

          function ago(ms) {
            if (typeof ms !== "number" || !isFinite(ms)) return "";
            const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
            if (s < 90) return s + " s ago";
            if (s < 5400) return Math.round(s / 60) + " min ago";
            if (s < 172800) return Math.round(s / 3600) + " h ago";
            return Math.round(s / 86400) + " days ago";
          }

          function show(id, visible) { $(id).hidden = !visible; }

          // --- the API ---

          async function api(path) {
            const response = await fetch(path, {
              headers: { "Authorization": "Bearer " + token, "Accept": "application/json" },
              cache: "no-store",
              credentials: "omit",
            });
            let body = null;
            try { body = await response.json(); } catch (e) { body = null; }
            if (response.status === 401) {
              throw new AuthError(body && body.error ? body.error.message : "the token was refused");
            }
            if (!response.ok) {
              const why = body && body.error ? body.error.message : response.statusText;
              const field = body && body.error && body.error.field ? " (field " + body.error.field + ")" : "";
              throw new Error(path.split("?")[0] + ": " + response.status + " " + why + field);
            }
            return body;
          }

          // --- log in and out ---

          // Only a 401 refuses the token: any other failure (Redis down: 503) came after the
          // token check, or is the network's; the dashboard then shows it and keeps retrying.
          async function login(candidate) {
            token = candidate;
            $("login-button").disabled = true;
            try {
              await api("/api/v1/status");
            } catch (e) {
              if (e instanceof AuthError) {
                token = null;
                $("login-error").textContent = "Token refused (401): " + e.message;
                $("login-error").hidden = false;
                return;
              }
            } finally {
              $("login-button").disabled = false;
            }
            sessionStorage.setItem(TOKEN_KEY, token);
            $("login-error").hidden = true;
            $("token").value = "";
            start();
          }

          function logout(reason) {
            generation += 1;
            if (timer) clearTimeout(timer);
            timer = null;
            token = null;
            seenVersion = null;
            sessionStorage.removeItem(TOKEN_KEY);
            show("dashboard", false);
            show("logout", false);
            show("login-section", true);
            $("summary").replaceChildren();
            $("updated").textContent = "";
            if (reason) {
              $("login-error").textContent = reason;
              $("login-error").hidden = false;
            }
            $("token").focus();
          }

          function start() {
            show("login-section", false);
            show("dashboard", true);
            show("logout", true);
            generation += 1;
            poll(generation);
          }

          // --- polling ---

          async function poll(mine) {
            if (document.hidden) {  // a background tab asks nothing; it redraws when shown again
              timer = setTimeout(() => poll(mine), POLL_MS);
              return;
            }
            try {
              const [status, health] = await Promise.all([api("/api/v1/status"), api("/api/v1/health")]);
              if (mine !== generation) return;
              const now = Date.now();
              if (status.version !== seenVersion || cache.routes === null) {
                const [routes, changes, streams] = await Promise.all([
                  api("/api/v1/routes"), api("/api/v1/changes?limit=" + CHANGES), api("/api/v1/streams")]);
                cache.routes = routes;
                cache.changes = changes;
                cache.streams = streams;
              }
              if (status.version !== seenVersion || now - certificatesAt > CERT_REFRESH_MS) {
                cache.certificates = await api("/api/v1/certificates");
                certificatesAt = now;
              }
              if (mine !== generation) return;
              seenVersion = status.version;
              render(status, health);
              $("problem").hidden = true;
              $("updated").textContent = "updated " + new Date().toLocaleTimeString();
            } catch (e) {
              if (mine !== generation) return;
              if (e instanceof AuthError) {
                logout("Token refused (401): " + e.message);
                return;
              }
              $("problem").textContent = "Cannot read the admin API: " + e.message + " (retrying)";
              $("problem").hidden = false;
            }
            if (mine === generation) timer = setTimeout(() => poll(mine), POLL_MS);
          }

          // --- rendering ---

          function render(status, health) {
            renderSummary(status, health);
            renderEdges(status);
            renderRoutes(cache.routes.items);
            renderUpstreams(health);
            renderChanges(cache.changes.items);
            renderCertificates(cache.certificates);
            renderStreams(cache.streams.items);
          }

          function renderSummary(status, health) {
            const converged = status.converged
              ? badge("converged", "ok", "every live edge holds what Redis holds")
              : badge("not converged", "bad", (status.problems || []).join("\n"));
            $("summary").replaceChildren(
              el("span", {}, "version ", el("strong", { id: "version" }, status.version)),
              el("span", {}, "digest ", el("code", {}, status.digest || "none")),
              el("span", {}, "edges ", el("strong", {}, status.live_edges)),
              converged,
              health.prober_alive ? badge("prober active", "ok") : badge("no prober", "warn",
                "no prober heartbeat: health records may be stale"));
          }

          function renderEdges(status) {
            $("edge-problems").replaceChildren(...(status.problems || []).map((p) => el("li", {}, p)));
            const rows = (status.edges || []).map((edge) => el("tr", { "data-edge": edge.id },
              el("td", { class: "mono" }, edge.id),
              el("td", { class: "mono" }, edge.listen || ""),
              el("td", { class: "num" }, edge.applied_version === null ? "none" : edge.applied_version),
              el("td", { class: "num" }, edge.lag === null ? "" : edge.lag),
              el("td", { class: "agreement" }, edge.in_sync
                ? badge("agrees", "agrees", "same version and digest as Redis")
                : badge("differs", "differs", edge.conflict || "its version or digest differs from Redis's")),
              el("td", {}, edge.live ? badge("live", "ok") : badge("silent", "bad")),
              el("td", { title: edge.last_seen }, ago(edge.last_seen_ms)),
              el("td", { class: "muted" }, edge.regex || "")));
            $("edges").replaceChildren(table(
              ["edge", "listen", "applied version#", "lag#", "agreement", "state", "last seen", "regex"],
              rows, "No edge has registered.", "edges"));
          }

          function hostOrder(host) {
            if (host === "*") return [2, host];
            if (host.startsWith("*.")) return [1, host.split(".").reverse().join(".")];
            return [0, host.split(".").reverse().join(".")];
          }

          function compareHosts(a, b) {
            const x = hostOrder(a);
            const y = hostOrder(b);
            return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0);
          }

          function target(route) {
            if (route.split) {
              return route.split.map((s) => s.upstream + " " + s.weight).join(" / ");
            }
            let text = route.upstream || "";
            if (route.canary) {
              const c = route.canary;
              const by = c.header ? "header " + c.header : c.cookie ? "cookie " + c.cookie : "";
              text += " (canary " + c.upstream + (by ? " by " + by : "") + ")";
            }
            return text;
          }

          const MATCH_ORDER = { exact: 0, prefix: 1, segment_prefix: 1, regex: 2 };

          function renderRoutes(routes) {
            $("route-count").textContent = "(" + routes.length + ")";
            const byHost = new Map();
            for (const route of routes) {
              if (!byHost.has(route.host)) byHost.set(route.host, []);
              byHost.get(route.host).push(route);
            }
            const hosts = [...byHost.keys()].sort(compareHosts);
            if (hosts.length === 0) {
              $("routes").replaceChildren(el("p", { class: "empty" }, "No routes."));
              return;
            }
            $("routes").replaceChildren(...hosts.map((host) => {
              const list = byHost.get(host).slice().sort((a, b) =>
                (MATCH_ORDER[a.match] - MATCH_ORDER[b.match]) || (b.priority - a.priority)
                || (b.path.length - a.path.length) || (a.id < b.id ? -1 : 1));
              const kind = host === "*" ? "catch-all"
                : host.startsWith("*.") ? (list[0].wildcard === "one_label" ? "wildcard, one label" : "wildcard")
                : "";
              const rows = list.map((route) => el("tr", { "data-route-id": route.id },
                el("td", { class: "mono" }, route.id),
                el("td", {}, route.match),
                el("td", { class: "mono" }, route.path),
                el("td", { class: "num" }, route.priority),
                el("td", { class: "mono" }, target(route)),
                el("td", { class: "muted" }, Object.keys(route).filter((k) => !BASE_ROUTE_FIELDS.has(k)).join(", ")),
                el("td", { class: "num" }, route.version)));
              return el("div", { class: "host", "data-host": host },
                el("h3", {}, el("span", { class: "mono" }, host), kind ? el("span", { class: "kind" }, " " + kind) : null),
                table(["id", "match", "path", "priority#", "upstream", "options", "version#"], rows, "", "routes"));
            }));
          }

          function renderUpstreams(health) {
            const items = health.items || [];
            $("upstream-count").textContent = "(" + items.length + ")";
            $("prober").textContent = health.prober_alive
              ? "Health from the active prober; endpoints without a record are unknown."
              : "No prober heartbeat: the health shown may be out of date.";
            if (items.length === 0) {
              $("upstreams").replaceChildren(el("p", { class: "empty" }, "No upstreams."));
              return;
            }
            $("upstreams").replaceChildren(...items.map((up) => {
              const checked = !!up.health_check;
              const check = checked
                ? (up.health_check.type || "http") + (up.health_check.path ? " " + up.health_check.path : "")
                : "no health check";
              const rows = (up.endpoints || []).map((ep) => {
                const state = checked ? (ep.health || "unknown") : "unchecked";
                return el("tr", { "data-endpoint": up.name + " " + ep.address, "data-health": state },
                  el("td", { class: "mono" }, ep.address),
                  el("td", { class: "num" }, ep.weight),
                  el("td", { class: "health" }, badge(state, state, ep.health_reason || null)),
                  el("td", { title: ep.health_since || null }, ep.health_since_ms ? ago(ep.health_since_ms) : ""),
                  el("td", { class: "reason" }, ep.health_reason || ""),
                  el("td", { class: "muted" }, ep.health_prober || ""));
              });
              return el("div", { class: "host", "data-upstream": up.name },
                el("h3", {}, el("span", { class: "mono" }, up.name),
                  el("span", { class: "kind" }, " " + (up.balance || "round_robin") + ", " + check),
                  up.health_stale ? " " : null, up.health_stale ? badge("stale", "warn", "no prober heartbeat") : null),
                table(["endpoint", "weight#", "health", "since", "why", "prober"], rows, "No endpoints.", "endpoints"));
            }));
          }

          function renderChanges(changes) {
            // ts: Redis's clock (ms) when the change was written, where the library records it
            const when = (c) => (Number(c.ts) > 0 ? ago(Number(c.ts)) : "");
            const rows = changes.map((c) => el("tr", { "data-change": c.entry },
              el("td", { class: "num" }, c.version),
              el("td", {}, c.op),
              el("td", {}, c.kind === "*" ? "" : c.kind),
              el("td", { class: "mono" }, c.id === "*" ? "everything" : c.id),
              el("td", { class: "muted", title: Number(c.ts) > 0 ? new Date(Number(c.ts)).toISOString() : null }, when(c))));
            $("changes").replaceChildren(table(["version#", "op", "kind", "object", "when"], rows, "No changes yet.", "changes"));
          }

          function renderCertificates(certificates) {
            const items = certificates.items || [];
            $("certificate-count").textContent = "(" + items.length + ")";
            const rows = items.map((c) => el("tr", { "data-certificate": c.id },
              el("td", { class: "mono" }, c.id),
              el("td", { class: "mono" }, (c.names || []).join(", ")),
              el("td", {}, c.not_after),
              el("td", { class: "num" }, c.expires_in_days),
              el("td", {}, c.expires_in_days < 0 ? badge("expired", "bad")
                : c.expiring_soon ? badge("expiring soon", "warn") : badge("valid", "ok")),
              el("td", {}, c.default ? "default" : "")));
            $("certificates").replaceChildren(table(
              ["id", "names", "not after", "days left#", "state", ""], rows, "No certificates.", "certificates"));
          }

          function renderStreams(items) {
            $("stream-count").textContent = "(" + items.length + ")";
            const rows = items.map((s) => el("tr", { "data-stream": s.id },
              el("td", { class: "mono" }, s.id),
              el("td", { class: "num" }, s.listen),
              el("td", {}, s.protocol),
              el("td", { class: "mono" }, s.upstream),
              el("td", {}, s.balance)));
            $("streams").replaceChildren(table(
              ["id", "listen#", "protocol", "upstream", "balance"], rows, "No streams.", "streams"));
          }

          // --- explain ---

          async function explain(event) {
            event.preventDefault();
            const query = [["url", $("explain-url").value.trim()], ["method", $("explain-method").value.trim() || "GET"]];
            for (const line of $("explain-headers").value.split("\n")) {
              const header = line.trim();
              if (header) query.push(["header", header.replace(/^([^:]+):\s*/, "$1:")]);
            }
            const path = "/api/v1/explain?" + query.map(([k, v]) => k + "=" + encodeURIComponent(v)).join("&");
            $("explain-button").disabled = true;
            $("explain-result").replaceChildren(el("p", { class: "muted" }, "Asking an edge..."));
            try {
              renderExplain(await api(path));
            } catch (e) {
              if (e instanceof AuthError) {
                logout("Token refused (401): " + e.message);
                return;
              }
              $("explain-result").replaceChildren(el("p", { id: "explain-error", class: "error" }, e.message));
            } finally {
              $("explain-button").disabled = false;
            }
          }

          function renderExplain(a) {
            const by = a.answered_by || {};
            const verdict = el("div", { class: "verdict", id: "explain-verdict", "data-route": a.route || "" },
              a.outcome === "proxy" ? badge(a.outcome, "ok") : badge(a.outcome || "?", "warn"),
              el("span", {}, "route ", el("strong", { class: "mono" }, a.route || "none")),
              a.status ? el("span", {}, "edge answers ", el("strong", {}, a.status)) : null,
              el("span", { class: "muted" }, "version " + a.version + ", edge " + (by.id || a.edge_id)
                + (by.in_sync === false ? " (not in sync with Redis)" : "")));
            const host = a.host || {};
            const hostLine = el("p", {}, "Host entry ", el("code", {}, host.entry || "none"),
              host.kind ? " (" + host.kind + ")" : "", host.why ? ": " + host.why : "");
            const candidates = (a.candidates || []).map((c) => el("tr", { "data-candidate": c.id },
              el("td", { class: "mono" }, c.id),
              el("td", { class: "mono" }, c.host),
              el("td", {}, c.match),
              el("td", { class: "mono" }, c.path),
              el("td", { class: "num" }, c.priority),
              el("td", {}, c.chosen ? badge("chosen", "ok") : c.reason)));
            const parts = [verdict, hostLine,
              table(["candidate", "host", "match", "path", "priority#", "verdict"], candidates, "No candidates.", "routes")];
            if (a.candidates_truncated) parts.push(el("p", { class: "muted" }, "(more candidates not shown)"));
            const options = Object.entries(a.options || {});
            if (options.length) {
              parts.push(el("h3", {}, "Options that apply"),
                el("dl", { class: "options" }, options.map(([k, v]) =>
                  [el("dt", {}, k), el("dd", { class: "mono" }, typeof v === "object" ? JSON.stringify(v) : String(v))])));
            }
            const upstreams = a.upstream ? [a.upstream] : (a.upstreams || []);
            for (const up of upstreams) {
              const rows = (up.endpoints || []).map((ep) => el("tr", {},
                el("td", { class: "mono" }, ep.address),
                el("td", { class: "num" }, ep.weight),
                el("td", {}, ep.in_rotation ? badge("in rotation", "ok") : badge("out", "bad")),
                el("td", {}, badge(ep.health || "unknown", ep.health || "unknown")),
                el("td", { class: "muted" }, ep.why || "")));
              parts.push(el("h3", {}, "Upstream ", el("span", { class: "mono" }, up.name),
                el("span", { class: "kind" }, " " + (up.balance || ""))),
                table(["endpoint", "weight#", "rotation", "health", "why"], rows, "No endpoints.", "endpoints"));
            }
            $("explain-result").replaceChildren(...parts);
          }

          // --- start ---

          document.addEventListener("DOMContentLoaded", () => {
            $("login").addEventListener("submit", (event) => {
              event.preventDefault();
              const value = $("token").value.trim();
              if (value) login(value);
            });
            $("logout").addEventListener("click", () => logout(null));
            $("explain").addEventListener("submit", explain);
            const saved = sessionStorage.getItem(TOKEN_KEY);
            if (saved) {
              token = saved;
              start();
            } else {
              $("token").focus();
            }
          });
        })();
        """#

    /// The page's style sheet.
    static let style = #"""
        :root {
          --fg: #1b1f24; --muted: #5b6470; --line: #d8dde3; --bg: #f6f7f9; --card: #fff;
          --up: #1a7f37; --down: #cf222e; --unknown: #6e7781; --warn: #9a6700; --accent: #1d4e89;
        }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        header {
          display: flex; align-items: center; gap: 1.5rem; flex-wrap: wrap;
          padding: .6rem 1.2rem; background: var(--accent); color: #fff;
        }
        header h1 { font-size: 1.15rem; margin: 0; }
        header .summary { display: flex; gap: 1rem; flex-wrap: wrap; flex: 1; }
        header .session { display: flex; gap: .8rem; align-items: center; }
        header .muted { color: #c9d6e8; }
        main { padding: 1rem 1.2rem 2rem; max-width: 1400px; }
        section {
          background: var(--card); border: 1px solid var(--line); border-radius: 6px;
          padding: .6rem 1rem 1rem; margin-bottom: 1rem;
        }
        h2 { font-size: 1rem; margin: .3rem 0 .6rem; }
        h3 { font-size: .92rem; margin: .9rem 0 .3rem; }
        .count { color: var(--muted); font-weight: normal; }
        .muted { color: var(--muted); }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: .25rem .6rem .25rem 0; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-weight: 600; color: var(--muted); font-size: .85rem; }
        td.num, th.num { text-align: right; }
        code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .86rem; }
        .badge {
          display: inline-block; padding: 0 .45rem; border-radius: 999px;
          font-size: .8rem; font-weight: 600; border: 1px solid transparent;
        }
        .badge.up, .badge.ok, .badge.agrees { background: #dafbe1; color: var(--up); }
        .badge.down, .badge.bad, .badge.differs { background: #ffebe9; color: var(--down); }
        .badge.unknown, .badge.unchecked, .badge.none { background: #eaeef2; color: var(--unknown); }
        .badge.warn { background: #fff8c5; color: var(--warn); }
        header .badge.ok { background: #dafbe1; }
        .login { max-width: 34rem; }
        .login label { display: block; font-weight: 600; margin: .6rem 0 .2rem; }
        .login input { width: 100%; padding: .4rem .5rem; font: inherit; border: 1px solid var(--line); border-radius: 4px; }
        button {
          font: inherit; padding: .3rem .9rem; border-radius: 4px;
          border: 1px solid var(--line); background: #fff; cursor: pointer;
        }
        .login button { margin-top: .6rem; background: var(--accent); color: #fff; border-color: var(--accent); }
        .error { color: var(--down); font-weight: 600; }
        .banner { background: #ffebe9; border: 1px solid #ffcecb; color: var(--down); padding: .5rem .8rem; border-radius: 6px; }
        .problems { margin: 0 0 .5rem; padding-left: 1.2rem; color: var(--down); }
        .problems:empty { display: none; }
        .host { margin-top: .5rem; }
        .host h3 .kind { color: var(--muted); font-weight: normal; }
        .empty { color: var(--muted); font-style: italic; }
        table.routes, table.endpoints, table.changes { table-layout: fixed; }
        table.routes th:nth-child(1) { width: 18%; } table.routes th:nth-child(2) { width: 11%; }
        table.routes th:nth-child(3) { width: 24%; } table.routes th:nth-child(4) { width: 7%; }
        table.routes th:nth-child(5) { width: 20%; } table.routes th:nth-child(7) { width: 7%; }
        table.endpoints th:nth-child(1) { width: 24%; } table.endpoints th:nth-child(2) { width: 7%; }
        table.endpoints th:nth-child(3) { width: 11%; } table.endpoints th:nth-child(4) { width: 12%; }
        table.endpoints th:nth-child(6) { width: 14%; }
        table.changes th:nth-child(1) { width: 9%; } table.changes th:nth-child(2) { width: 9%; }
        table.changes th:nth-child(3) { width: 14%; } table.changes th:nth-child(5) { width: 16%; }
        td { overflow-wrap: anywhere; }
        .explain { display: grid; grid-template-columns: 10rem 1fr; gap: .35rem .8rem; align-items: center; max-width: 60rem; }
        .explain input, .explain textarea { font: inherit; padding: .3rem .45rem; border: 1px solid var(--line); border-radius: 4px; }
        .explain textarea { font-family: ui-monospace, Menlo, Consolas, monospace; }
        .explain button { grid-column: 2; justify-self: start; }
        .verdict { display: flex; gap: 1rem; flex-wrap: wrap; align-items: baseline; margin: .8rem 0 .3rem; }
        dl.options { display: grid; grid-template-columns: 12rem 1fr; gap: .15rem .8rem; margin: .3rem 0; }
        dl.options dt { color: var(--muted); }
        dl.options dd { margin: 0; }
        [hidden] { display: none !important; }
        """#

    /// The page's icon (so the browser does not ask for /favicon.ico).
    static let icon = #"""
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">
        <rect width="16" height="16" rx="3" fill="#1d4e89"/>
        <path d="M3 4h10M3 8h6l4 4M9 8l4-4" stroke="#fff" stroke-width="1.6" fill="none"/>
        </svg>
        """#
}
