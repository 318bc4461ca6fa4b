-- luacheck configuration (make lint-lua): the edge's Lua (lua/), its specs, and the Redis
-- Function library (redis/).

-- lua/: nginx's LuaJIT with lua-nginx-module (ngx, ndk); the pure modules also run on
-- Lua 5.2 under busted (bit32, table.unpack)
std = "ngx_lua+lua52"
max_line_length = 100

-- specs: busted's globals; their tables of cases and assertions may run longer
files["lua/**/*_spec.lua"] = {std = "+busted", max_line_length = 120}
files["lua/spec_support/"] = {std = "+busted", max_line_length = 120}

-- redis/: Redis's Lua 5.1 and the libraries it loads for scripts and functions
files["redis/"] = {
    std = "lua51",
    read_globals = {"redis", "KEYS", "ARGV", "cjson", "cmsgpack", "bit", "struct"},
}
