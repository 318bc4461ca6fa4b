// GENERATED from docs/openapi.yaml by scripts/gen_openapi_swift.py (make openapi): edit the
// YAML, then regenerate. OpenAPITests checks that the two are the same, byte for byte.

enum OpenAPIDocument {
    /// docs/openapi.yaml
    static let yaml = ##"""
        openapi: 3.0.3
        info:
          title: Switchyard admin API
          version: "1"
          description: |
            The controller's admin API: routes, upstreams, certificates, batches, history and
            revert, status, explain, tokens. Served by the controller itself at
            GET /api/v1/openapi.yaml (a read token is needed, like every /api/v1 call).

            Every /api/v1 call needs `Authorization: Bearer <token>`: GETs the `read` role, changes
            the `write` role, reseed and the token endpoints `admin`. 401 without a valid token,
            403 naming the role needed. Every error is `{"error":{"code","message",...}}`; 422 lists
            every problem in `details`. A rejected request writes nothing.

            Writes take `?dry_run=true` (describe the change and its routing impact, write nothing),
            `If-Match: "<version>"` (412 when the configuration is at another version) and
            `X-Switchyard-Note` (recorded in the history). Successful GETs carry `ETag: "<version>"`.

            The route and upstream fields are described in README.md and docs/traffic-policies.md;
            the schemas below name the common ones and allow the others.
        servers:
          - url: http://127.0.0.1:9180
        security:
          - bearer: []
        tags:
          - name: objects
          - name: batch
          - name: history
          - name: status
          - name: access
          - name: operations
        paths:
          /healthz:
            get:
              operationId: healthz
              summary: Whether the controller runs and Redis answers (no token)
              security: []
              responses:
                "200":
                  description: Always 200 while the controller runs; `redis` says whether Redis answers.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [status, redis]
                        properties:
                          status: {type: string, enum: [ok]}
                          redis: {type: boolean}

          /api/v1/openapi.yaml:
            get:
              operationId: openapi
              summary: This document
              description: The OpenAPI description of this API, embedded in the binary. Needs the read role.
              responses:
                "200":
                  description: The document
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/yaml:
                      schema:
                        type: object
                        description: This document (a YAML mapping)
                        required: [openapi, info, paths, components]
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}

          /api/v1/upstreams:
            get:
              operationId: listUpstreams
              tags: [objects]
              summary: Every upstream
              responses:
                "200":
                  description: The upstreams and the configuration version
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [items, version]
                        properties:
                          items: {type: array, items: {$ref: "#/components/schemas/Upstream"}}
                          version: {type: integer}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/upstreams/{name}:
            parameters:
              - $ref: "#/components/parameters/UpstreamName"
            get:
              operationId: getUpstream
              tags: [objects]
              summary: One upstream (with its endpoints' health when it has a health check)
              responses:
                "200":
                  description: The upstream
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Upstream"}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "503": {$ref: "#/components/responses/Unavailable"}
            put:
              operationId: putUpstream
              tags: [objects]
              summary: Create or replace an upstream
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/UpstreamInput"}
              responses:
                "200":
                  description: Replaced or unchanged (or, with dry_run, the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/Upstream"
                          - $ref: "#/components/schemas/DryRunReport"
                "201":
                  description: Created
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Upstream"}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "413": {$ref: "#/components/responses/TooLarge"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}
            delete:
              operationId: deleteUpstream
              tags: [objects]
              summary: Delete an upstream (409 in_use naming the routes and streams that use it)
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              responses:
                "200":
                  description: Deleted (or, with dry_run, the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/DeletedUpstream"
                          - $ref: "#/components/schemas/DryRunReport"
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/upstreams/{name}/endpoints/{address}:
            parameters:
              - $ref: "#/components/parameters/UpstreamName"
              - $ref: "#/components/parameters/EndpointAddress"
            put:
              operationId: putEndpoint
              tags: [objects]
              summary: One endpoint joins an upstream (or changes its weight)
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              requestBody:
                required: false
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/EndpointInput"}
              responses:
                "200":
                  description: The upstream, endpoint replaced or unchanged (or the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/Upstream"
                          - $ref: "#/components/schemas/DryRunReport"
                "201":
                  description: The upstream, endpoint added
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Upstream"}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "413": {$ref: "#/components/responses/TooLarge"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}
            delete:
              operationId: deleteEndpoint
              tags: [objects]
              summary: One endpoint leaves an upstream
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              responses:
                "200":
                  description: The upstream without the endpoint (or the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/Upstream"
                          - $ref: "#/components/schemas/DryRunReport"
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/routes:
            get:
              operationId: listRoutes
              tags: [objects]
              summary: Every route
              responses:
                "200":
                  description: The routes and the configuration version
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [items, version]
                        properties:
                          items: {type: array, items: {$ref: "#/components/schemas/Route"}}
                          version: {type: integer}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/routes/{id}:
            parameters:
              - $ref: "#/components/parameters/RouteId"
            get:
              operationId: getRoute
              tags: [objects]
              summary: One route
              responses:
                "200":
                  description: The route
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Route"}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "503": {$ref: "#/components/responses/Unavailable"}
            put:
              operationId: putRoute
              tags: [objects]
              summary: Create or replace a route (422 names every missing upstream)
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/RouteInput"}
              responses:
                "200":
                  description: Replaced or unchanged (or, with dry_run, the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/Route"
                          - $ref: "#/components/schemas/DryRunReport"
                "201":
                  description: Created
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Route"}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "413": {$ref: "#/components/responses/TooLarge"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}
            delete:
              operationId: deleteRoute
              tags: [objects]
              summary: Delete a route
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              responses:
                "200":
                  description: Deleted (or, with dry_run, the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/DeletedById"
                          - $ref: "#/components/schemas/DryRunReport"
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/certificates:
            get:
              operationId: listCertificates
              tags: [objects]
              summary: Every certificate (without chain and key)
              parameters:
                - name: expiring_within_days
                  in: query
                  required: false
                  description: Only the certificates that expire within this many days
                  schema: {type: integer, minimum: 0, maximum: 36500}
              responses:
                "200":
                  description: The certificates, and the ids expiring within 30 days
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [items, expiring_soon, version]
                        properties:
                          items: {type: array, items: {$ref: "#/components/schemas/Certificate"}}
                          expiring_soon: {type: array, items: {type: string}}
                          version: {type: integer}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/certificates/{id}:
            parameters:
              - $ref: "#/components/parameters/CertificateId"
            get:
              operationId: getCertificate
              tags: [objects]
              summary: One certificate with its chain (never the key)
              responses:
                "200":
                  description: The certificate
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Certificate"}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "500": {$ref: "#/components/responses/Internal"}
                "503": {$ref: "#/components/responses/Unavailable"}
            put:
              operationId: putCertificate
              tags: [objects]
              summary: Create or replace a certificate (PEM chain and unencrypted key)
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/CertificateInput"}
              responses:
                "200":
                  description: Replaced or unchanged (or, with dry_run, the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/Certificate"
                          - $ref: "#/components/schemas/DryRunReport"
                "201":
                  description: Created
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Certificate"}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "413": {$ref: "#/components/responses/TooLarge"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}
            delete:
              operationId: deleteCertificate
              tags: [objects]
              summary: Delete a certificate
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              responses:
                "200":
                  description: Deleted (or, with dry_run, the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/DeletedById"
                          - $ref: "#/components/schemas/DryRunReport"
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/apply:
            post:
              operationId: apply
              tags: [batch]
              summary: Apply a batch of upstreams, routes, certificates, streams and deletions in one atomic change
              description: |
                All or nothing, one version; at most 1,000 objects and 2 MiB (413 too_large naming
                both) unless `atomic=false`. With `owner` the objects are written as that owner;
                with `prune=true` every object the owner holds that the document does not name is
                deleted in the same change. Objects of other owners are never touched (409 owned).
              parameters:
                - name: atomic
                  in: query
                  required: false
                  description: false applies a larger batch in consecutive atomic parts, each its own version
                  schema: {type: boolean, default: true}
                - name: prune
                  in: query
                  required: false
                  description: Delete what `owner` holds and the document does not name (needs owner)
                  schema: {type: boolean, default: false}
                - name: owner
                  in: query
                  required: false
                  description: The writer whose objects the document describes (printable ASCII, no spaces)
                  schema: {type: string, minLength: 1, maxLength: 253, pattern: "^[!-~]+$"}
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/Batch"}
              responses:
                "200":
                  description: Applied (or, with dry_run, the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/ApplyResult"
                          - $ref: "#/components/schemas/DryRunReport"
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "413": {$ref: "#/components/responses/TooLarge"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/streams:
            get:
              operationId: listStreams
              tags: [objects]
              summary: Every TCP/UDP stream service (docs/stream.md) and the configuration version
              responses:
                "200":
                  description: The streams and the configuration version
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [items, version]
                        properties:
                          items: {type: array, items: {$ref: "#/components/schemas/Stream"}}
                          version: {type: integer}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/streams/{id}:
            parameters:
              - $ref: "#/components/parameters/StreamId"
            get:
              operationId: getStream
              tags: [objects]
              summary: One stream service
              responses:
                "200":
                  description: The stream
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Stream"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "503": {$ref: "#/components/responses/Unavailable"}
            put:
              operationId: putStream
              tags: [objects]
              summary: Create or replace a stream service (409 port_conflict when another stream holds the port)
              description: |
                A stream is a configuration object like a route: written by the same atomic change
                (history, revert, digest), with dry_run, If-Match and the note like every object.
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/StreamInput"}
              responses:
                "200":
                  description: Replaced or unchanged (or, with dry_run, the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/Stream"
                          - $ref: "#/components/schemas/DryRunReport"
                "201":
                  description: Created
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Stream"}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "413": {$ref: "#/components/responses/TooLarge"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}
            delete:
              operationId: deleteStream
              tags: [objects]
              summary: Delete a stream service (its listener closes; open TCP connections stay)
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              responses:
                "200":
                  description: Deleted (or, with dry_run, the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - $ref: "#/components/schemas/DeletedById"
                          - $ref: "#/components/schemas/DryRunReport"
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/history:
            get:
              operationId: listHistory
              tags: [history]
              summary: The changes after a version, oldest first
              parameters:
                - name: since
                  in: query
                  required: false
                  description: Changes after this version (default from the oldest kept)
                  schema: {type: integer, minimum: 0}
                - name: limit
                  in: query
                  required: false
                  schema: {type: integer, minimum: 1, maximum: 500, default: 50}
              responses:
                "200":
                  description: The changes
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [items, version, oldest, next_since]
                        properties:
                          items: {type: array, items: {$ref: "#/components/schemas/HistoryEntry"}}
                          version: {type: integer}
                          oldest: {type: integer, nullable: true}
                          next_since:
                            type: integer
                            nullable: true
                            description: Pass as `since` for the next page; null on the last page
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/history/{version}:
            get:
              operationId: getHistory
              tags: [history]
              summary: One change, every object before and after
              parameters:
                - name: version
                  in: path
                  required: true
                  example: 1
                  schema: {type: integer, minimum: 1}
              responses:
                "200":
                  description: The change
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/HistoryEntry"}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/revert:
            post:
              operationId: revert
              tags: [history]
              summary: Routes, upstreams and certificates back to a version, in one atomic change
              parameters:
                - $ref: "#/components/parameters/DryRun"
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [to_version]
                      additionalProperties: false
                      properties:
                        to_version: {type: integer, minimum: 1}
                        include_owned:
                          type: boolean
                          description: Revert objects other writers own too (else 409 owned naming them)
              responses:
                "200":
                  description: Reverted; `digest` equals `digest_at_version` (or the dry-run report)
                  content:
                    application/json:
                      schema:
                        anyOf:
                          - type: object
                            required: [version, changed, reverted_to, digest, digest_at_version]
                            properties:
                              version: {type: integer}
                              changed: {type: integer}
                              reverted_to: {type: integer}
                              digest: {type: string, nullable: true}
                              digest_at_version: {type: string}
                          - $ref: "#/components/schemas/DryRunReport"
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "413": {$ref: "#/components/responses/TooLarge"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/status:
            get:
              operationId: status
              tags: [status]
              summary: Version, digest, every edge and whether they converged
              parameters:
                - name: wait_version
                  in: query
                  required: false
                  description: Wait until every live edge has applied this version (or the timeout)
                  schema: {type: integer, minimum: 0}
                - name: timeout_ms
                  in: query
                  required: false
                  description: How long to wait (needs wait_version; default 10000)
                  schema: {type: integer, minimum: 0, maximum: 60000}
                - name: check
                  in: query
                  required: false
                  description: "`documents`: also check every stored document against its recorded hash"
                  schema: {type: string, enum: [documents]}
              responses:
                "200":
                  description: The status
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Status"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/changes:
            get:
              operationId: changes
              tags: [status]
              summary: The newest entries of the change stream, newest first (the status page's feed)
              parameters:
                - name: limit
                  in: query
                  required: false
                  schema: {type: integer, minimum: 1, maximum: 500, default: 50}
              responses:
                "200":
                  description: The entries
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [items, version]
                        properties:
                          items:
                            type: array
                            items:
                              type: object
                              required: [entry]
                              properties:
                                entry: {type: string, description: "The stream id (`7-0`)"}
                                version: {type: integer}
                                op: {type: string}
                                kind: {type: string}
                                id: {type: string}
                          version: {type: integer}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/health:
            get:
              operationId: health
              tags: [status]
              summary: Every upstream with its endpoints' health (the status page's feed)
              responses:
                "200":
                  description: The upstreams
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [items, prober_alive, version]
                        properties:
                          items: {type: array, items: {$ref: "#/components/schemas/Upstream"}}
                          prober_alive: {type: boolean}
                          version: {type: integer}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/explain:
            get:
              operationId: explain
              tags: [status]
              summary: Which route an edge would choose for a request, and why (asked of a live edge)
              parameters:
                - name: url
                  in: query
                  required: true
                  description: |
                    The request's URL, at most 8192 bytes (UTF-8). The lengths this document gives for
                    explain's parameters are a subset that always fits: a request head over 80 KB
                    (percent-encoding included) is refused by the HTTP server, 400 without a body.
                  schema: {type: string, minLength: 1, maxLength: 2048}
                - name: method
                  in: query
                  required: false
                  schema: {type: string, maxLength: 16, default: GET}
                - name: header
                  in: query
                  required: false
                  description: "`Name:value`, repeated: at most 64, each at most 8192 bytes"
                  style: form
                  explode: true
                  schema: {type: array, maxItems: 64, items: {type: string, maxLength: 48}}
                - name: client
                  in: query
                  required: false
                  description: The client address the edge assumes
                  schema: {type: string, maxLength: 64}
                - name: edge
                  in: query
                  required: false
                  description: Ask this edge (its id)
                  schema: {type: string, maxLength: 64}
              responses:
                "200":
                  description: The edge's answer with `answered_by`
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [answered_by]
                        properties:
                          answered_by: {type: object}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "404": {$ref: "#/components/responses/NotFound"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/whoami:
            get:
              operationId: whoami
              tags: [access]
              summary: The calling token's name and role
              responses:
                "200":
                  description: The token
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [name, role, group]
                        properties:
                          name: {type: string}
                          role: {$ref: "#/components/schemas/Role"}
                          group:
                            type: string
                            description: The group this controller serves (--group; cfg by default)
                          groups:
                            type: array
                            items: {type: string}
                            description: The groups the token is limited to; absent when it is good for every group
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}

          /api/v1/tokens:
            get:
              operationId: listTokens
              tags: [access]
              summary: Every token's name, role and source, never a hash (admin)
              responses:
                "200":
                  description: The tokens
                  headers:
                    ETag: {$ref: "#/components/headers/ETag"}
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [items, file, authentication]
                        properties:
                          items:
                            type: array
                            items:
                              type: object
                              required: [name, role, source]
                              properties:
                                name: {type: string}
                                role: {$ref: "#/components/schemas/Role"}
                                source: {type: string, enum: [file, SWITCHYARD_ADMIN_TOKEN]}
                                groups:
                                  type: array
                                  items: {type: string}
                                  description: The groups the token is limited to; absent when it is good for every group
                          file: {type: string, nullable: true}
                          authentication: {type: boolean}
                          loaded_at_ms: {type: integer}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}

          /api/v1/tokens/reload:
            post:
              operationId: reloadTokens
              tags: [access]
              summary: Read the tokens file again, as SIGHUP does (admin)
              responses:
                "200":
                  description: Reloaded
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [file, tokens]
                        properties:
                          file: {type: string}
                          tokens: {type: integer}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

          /api/v1/reseed:
            post:
              operationId: reseed
              tags: [operations]
              summary: After Redis lost its data, make what it holds the configuration under a new epoch (admin)
              parameters:
                - $ref: "#/components/parameters/IfMatch"
                - $ref: "#/components/parameters/Note"
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [confirm]
                      additionalProperties: false
                      properties:
                        confirm:
                          type: string
                          description: Redis's epoch now (GET /api/v1/status) or "none" when it has none
                          pattern: "^(none|[0-9a-f]{32})$"
              responses:
                "200":
                  description: Re-seeded
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [version, epoch, previous_epoch]
                        properties:
                          version: {type: integer}
                          epoch: {type: string}
                          previous_epoch: {type: string, nullable: true}
                "400": {$ref: "#/components/responses/BadRequest"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "403": {$ref: "#/components/responses/Forbidden"}
                "409": {$ref: "#/components/responses/Conflict"}
                "412": {$ref: "#/components/responses/PreconditionFailed"}
                "413": {$ref: "#/components/responses/TooLarge"}
                "422": {$ref: "#/components/responses/Invalid"}
                "503": {$ref: "#/components/responses/Unavailable"}

        components:
          securitySchemes:
            bearer:
              type: http
              scheme: bearer
              description: |
                A named token (role read, write or admin) or SWITCHYARD_ADMIN_TOKEN (admin).

          headers:
            ETag:
              description: The configuration version the answer is at, in quotes; send it as If-Match
              schema: {type: string, pattern: '^"[0-9]+"$'}

          parameters:
            UpstreamName:
              name: name
              in: path
              required: true
              description: 1-63 of a-z 0-9 . _ - (not . or ..)
              example: backend
              schema: {$ref: "#/components/schemas/Name"}
            StreamId:
              name: id
              in: path
              required: true
              description: 1-63 of a-z 0-9 . _ - (not . or ..)
              example: postgres
              schema: {$ref: "#/components/schemas/Name"}
            RouteId:
              name: id
              in: path
              required: true
              description: 1-63 of a-z 0-9 . _ - (not . or ..)
              example: bbs
              schema: {$ref: "#/components/schemas/Name"}
            CertificateId:
              name: id
              in: path
              required: true
              description: 1-63 of a-z 0-9 . _ - (not . or ..)
              example: shop
              schema: {$ref: "#/components/schemas/Name"}
            EndpointAddress:
              name: address
              in: path
              required: true
              description: IPv4 with port (`127.0.0.1:9201`) or [IPv6] with port, percent-encoded (`%5B%3A%3A1%5D%3A9201`)
              schema: {type: string, pattern: '^(([0-9]{1,3}\.){3}[0-9]{1,3}|\[[0-9a-f:.]+\]):[0-9]{1,5}$'}
            DryRun:
              name: dry_run
              in: query
              required: false
              description: Validate and answer the diff and the routing impact; write nothing
              schema: {type: boolean, default: false}
            IfMatch:
              name: If-Match
              in: header
              required: false
              description: 'Only while the configuration is at this version (the ETag of a GET): `"42"`; else 412'
              schema: {type: string, pattern: '^"[0-9]{1,15}"$'}
            Note:
              name: X-Switchyard-Note
              in: header
              required: false
              description: Recorded with the change in the history (printable, at most 500 bytes)
              schema: {type: string, maxLength: 500, pattern: '^[ -~]*$'}

          responses:
            BadRequest:
              description: Unparsable JSON, a body that is not an object, a malformed header or URL
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            Unauthorized:
              description: No valid bearer token
              headers:
                WWW-Authenticate:
                  schema: {type: string}
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            Forbidden:
              description: The token's role is not enough (`required_role`, `role`)
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            NotFound:
              description: No such object (or version)
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            Conflict:
              description: |
                in_use, owned (another writer owns the object), version_mismatch, beyond_retention,
                redis_data_lost, epoch_conflict, confirm_mismatch, no_tokens_file
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            PreconditionFailed:
              description: If-Match names another version than the configuration's (`version`, `expected`)
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            TooLarge:
              description: The body or the atomic batch is too large (`max_objects`, `max_bytes`)
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            Invalid:
              description: Invalid values; `details` lists every problem with its field
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            Unavailable:
              description: Redis does not answer (Retry-After), or no edge answered explain
              headers:
                Retry-After:
                  schema: {type: string}
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            Internal:
              description: A stored document the controller cannot read (store_corrupt); nothing was written
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}

          schemas:
            Name:
              type: string
              pattern: '^[a-z0-9_-][a-z0-9._-]{0,62}$'
            Role:
              type: string
              enum: [read, write, admin]
            Error:
              type: object
              required: [error]
              properties:
                error:
                  type: object
                  required: [code, message]
                  properties:
                    code: {type: string}
                    message: {type: string}
                    field: {type: string}
                    details:
                      type: array
                      items:
                        type: object
                        required: [field, code, message]
                        properties:
                          field: {type: string}
                          code: {type: string}
                          message: {type: string}
            Endpoint:
              type: object
              required: [address, weight]
              properties:
                address: {type: string}
                weight: {type: integer, minimum: 1, maximum: 1000}
                health: {type: string, enum: [up, down, unknown, unchecked]}
            EndpointInput:
              type: object
              description: Other endpoint fields (docs/traffic-policies.md) are accepted too
              properties:
                address: {type: string}
                weight: {type: integer, minimum: 1, maximum: 1000}
            Upstream:
              type: object
              required: [name, endpoints, version]
              properties:
                name: {type: string}
                balance: {type: string}
                endpoints: {type: array, items: {$ref: "#/components/schemas/Endpoint"}}
                owner: {type: string}
                source: {type: string}
                health_stale: {type: boolean}
                version: {type: integer}
            UpstreamInput:
              type: object
              description: Other upstream fields (health_check, tls, hash_on, sticky, ...; docs/traffic-policies.md) are accepted too
              properties:
                name: {type: string}
                balance: {type: string, enum: [round_robin, least_conn, ip_hash, hash, sticky]}
                protocol:
                  type: string
                  enum: [http, grpc, grpcs]
                  description: how the edges talk to the endpoints (grpc and grpcs through grpc_pass; default http)
                endpoints:
                  type: array
                  items:
                    type: object
                    required: [address]
                    properties:
                      address: {type: string, example: "127.0.0.1:9201"}
                      weight: {type: integer, minimum: 1, maximum: 1000}
              example:
                endpoints: [{address: "127.0.0.1:9201", weight: 1}]
                balance: round_robin
            Route:
              type: object
              required: [id, host, path, match, version]
              properties:
                id: {type: string}
                host: {type: string}
                path: {type: string}
                match: {type: string, enum: [exact, prefix, segment_prefix, regex]}
                upstream: {type: string}
                priority: {type: integer}
                owner: {type: string}
                source: {type: string}
                jwt: {$ref: '#/components/schemas/JWTAnswer'}
                version: {type: integer}
            JWTAnswer:
              type: object
              description: |
                A route's jwt as answered: an HS256 key shows `secret_sha256` (the first 16 hex
                digits of the secret's SHA-256), never the secret (docs/traffic-policies.md, "HS256
                secrets"); sent back in a PUT or apply it keeps the stored secret
              properties:
                keys:
                  type: array
                  items:
                    type: object
                    properties:
                      alg: {type: string, enum: [RS256, ES256, HS256]}
                      kid: {type: string}
                      pem: {type: string}
                      secret_sha256: {type: string, pattern: '^[0-9a-f]{16}$'}
                jwks:
                  type: object
                  properties:
                    keys: {type: array, items: {type: object}}
            RouteInput:
              type: object
              description: |
                One of upstream, split or redirect; other route fields (canary, rewrite, headers,
                timeouts, rate_limit, allow, deny, tls, cors, gzip, error_pages, and one of
                basic_auth, jwt and forward_auth, ...; docs/traffic-policies.md) are accepted too
              required: [host, path]
              properties:
                host: {type: string, example: bbs.test.com}
                path: {type: string, example: /api}
                match: {type: string, enum: [exact, prefix, segment_prefix, regex]}
                upstream: {type: string}
                priority: {type: integer}
                jwt:
                  type: object
                  description: |
                    Bearer tokens checked at the edge (docs/traffic-policies.md, "Authentication").
                    An HS256 key gives `secret` (32-512 bytes: a new secret, sealed at rest with
                    SWITCHYARD_CERT_KEY, never answered) or `secret_sha256` alone (keep the secret
                    the route has stored with that fingerprint; 422 when it has none)
                  properties:
                    keys:
                      type: array
                      minItems: 1
                      maxItems: 8
                      items:
                        type: object
                        required: [alg]
                        properties:
                          alg: {type: string, enum: [RS256, ES256, HS256]}
                          kid: {type: string}
                          pem: {type: string, description: RS256 and ES256 only}
                          secret: {type: string, minLength: 32, maxLength: 512, writeOnly: true}
                          secret_sha256: {type: string, pattern: '^[0-9a-f]{16}$'}
                    jwks:
                      type: object
                      description: |
                        Instead of keys: a JWKS document (RSA n/e and EC P-256 x/y JWKs, public
                        members only); stored, never fetched from a URL
                      properties:
                        keys: {type: array, minItems: 1, maxItems: 8, items: {type: object}}
              example:
                host: bbs.test.com
                path: /api
                match: prefix
                upstream: backend
            Certificate:
              type: object
              required: [id, version]
              description: Never the key; `cert` (the chain) only from GET /certificates/{id}
              properties:
                id: {type: string}
                names: {type: array, items: {type: string}}
                default: {type: boolean}
                key_encrypted: {type: boolean}
                expires_in_days: {type: integer}
                expiring_soon: {type: boolean}
                shadowed:
                  type: array
                  items:
                    type: object
                    properties:
                      name: {type: string}
                      by: {type: string}
                version: {type: integer}
            CertificateInput:
              type: object
              required: [cert, key]
              properties:
                cert: {type: string, description: "PEM chain, leaf first"}
                key: {type: string, description: Unencrypted PEM private key}
                default: {type: boolean}
                client_ca: {type: string, description: "PEM CA certificates; the edges ask clients of this certificate's names for a client certificate signed by them"}
                verify_client: {type: string, enum: [required, optional], description: "only with client_ca; required (the default) refuses a handshake without a valid client certificate"}
            DeletedUpstream:
              type: object
              required: [name, deleted, version]
              properties:
                name: {type: string}
                deleted: {type: boolean}
                version: {type: integer}
            Stream:
              type: object
              required: [id, listen, protocol, upstream, balance, connect_timeout_ms, idle_timeout_s, allow, deny, version]
              properties:
                id: {type: string}
                listen: {type: integer, minimum: 1, maximum: 65535}
                protocol: {type: string, enum: [tcp, udp]}
                upstream: {type: string}
                balance: {type: string, enum: [round_robin, least_conn, hash]}
                connect_timeout_ms: {type: integer}
                idle_timeout_s: {type: integer}
                proxy_protocol: {type: boolean}
                allow: {type: array, items: {type: string}}
                deny: {type: array, items: {type: string}}
                version: {type: integer}
            StreamInput:
              type: object
              required: [listen, upstream]
              properties:
                listen: {type: integer, minimum: 1, maximum: 65535}
                protocol: {type: string, enum: [tcp, udp]}
                upstream: {$ref: "#/components/schemas/Name"}
                balance: {type: string, enum: [round_robin, least_conn, hash], description: least_conn is TCP only}
                connect_timeout_ms: {type: integer, minimum: 1, maximum: 60000}
                idle_timeout_s: {type: integer, minimum: 1, maximum: 86400}
                proxy_protocol: {type: boolean}
                allow: {type: array, items: {type: string}, description: CIDRs}
                deny: {type: array, items: {type: string}, description: CIDRs}
            DeletedById:
              type: object
              required: [id, deleted, version]
              properties:
                id: {type: string}
                deleted: {type: boolean}
                version: {type: integer}
            Batch:
              type: object
              properties:
                upstreams: {type: array, items: {type: object}}
                routes: {type: array, items: {type: object}}
                certificates: {type: array, items: {type: object}}
                streams: {type: array, items: {type: object}, description: "StreamInput with its id; atomic batches only"}
                delete:
                  type: object
                  properties:
                    routes: {type: array, items: {type: string}}
                    upstreams: {type: array, items: {type: string}}
                    certificates: {type: array, items: {type: string}}
                    streams: {type: array, items: {type: string}}
            ApplyResult:
              type: object
              required: [version, changed]
              properties:
                version: {type: integer}
                changed: {type: integer}
                atomic: {type: boolean}
                versions: {type: array, items: {type: integer}}
                owner: {type: string}
                pruned: {type: array, items: {type: string}}
            DryRunReport:
              type: object
              required: [dry_run, version, changed, changes, impact]
              properties:
                dry_run: {type: boolean, enum: [true]}
                version: {type: integer}
                changed: {type: integer}
                changes:
                  type: object
                  required: [created, updated, deleted]
                  properties:
                    created: {type: array, items: {$ref: "#/components/schemas/ChangedObject"}}
                    updated: {type: array, items: {$ref: "#/components/schemas/ChangedObject"}}
                    deleted: {type: array, items: {$ref: "#/components/schemas/ChangedObject"}}
                impact:
                  type: object
                  required: [shadowed_routes, upstreams_without_endpoints, routes_without_healthy_endpoints]
                  properties:
                    shadowed_routes:
                      type: array
                      items:
                        type: object
                        required: [route, by, reason, new]
                        properties:
                          route: {type: string}
                          by: {type: string, nullable: true}
                          reason: {type: string}
                          new: {type: boolean, description: The change causes it}
                    upstreams_without_endpoints: {type: array, items: {type: string}}
                    routes_without_healthy_endpoints:
                      type: array
                      items:
                        type: object
                        required: [route, upstreams]
                        properties:
                          route: {type: string}
                          upstreams: {type: array, items: {type: string}}
            ChangedObject:
              type: object
              required: [kind, id]
              properties:
                kind: {type: string, enum: [route, upstream, certificate, stream]}
                id: {type: string}
                fields:
                  type: array
                  description: Field by field (created and updated objects)
                  items: {$ref: "#/components/schemas/FieldChange"}
            FieldChange:
              type: object
              required: [field, before, after]
              properties:
                field: {type: string}
                before: {nullable: true}
                after: {nullable: true}
            HistoryEntry:
              type: object
              required: [version, time, ts_ms, who, note, digest, objects]
              properties:
                version: {type: integer}
                time: {type: string, format: date-time}
                ts_ms: {type: integer}
                who: {type: string}
                note: {type: string, nullable: true}
                digest: {type: string}
                resync: {type: boolean}
                objects:
                  type: array
                  items:
                    type: object
                    required: [kind, id, op, before, after, fields]
                    properties:
                      kind: {type: string}
                      id: {type: string}
                      op: {type: string, enum: [created, updated, deleted]}
                      before: {nullable: true}
                      after: {nullable: true}
                      fields: {type: array, items: {$ref: "#/components/schemas/FieldChange"}}
            Status:
              type: object
              required: [version, digest, epoch, converged, problems, live_edges, edges]
              properties:
                group:
                  type: string
                  description: The group this controller serves (--group; cfg by default)
                version: {type: integer}
                digest: {type: string, nullable: true}
                epoch: {type: string, nullable: true}
                converged: {type: boolean}
                problems: {type: array, items: {type: string}}
                live_edges: {type: integer}
                edges:
                  type: array
                  items:
                    type: object
                    required: [id, live, in_sync]
                    properties:
                      id: {type: string}
                      applied_version: {type: integer, nullable: true}
                      lag: {type: integer, nullable: true}
                      digest: {type: string, nullable: true}
                      live: {type: boolean}
                      in_sync: {type: boolean}
                wait:
                  type: object
                  properties:
                    version: {type: integer}
                    timeout_ms: {type: integer}
                    waited_ms: {type: integer}
                documents:
                  type: object
                  properties:
                    checked: {type: integer}
                    recorded: {type: boolean}
                    differ: {type: array, items: {type: object}}

        """##
}
