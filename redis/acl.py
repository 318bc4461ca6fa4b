#!/usr/bin/env python3
"""Redis ACL users for Switchyard's roles, from the key schema (redis/README.md).

Prints one `ACL SETUSER` command per role (--format setuser, for redis-cli) or one aclfile
line per role (--format aclfile, for redis.conf's `aclfile`). Each role's password comes
from the environment, never from a flag: SWITCHYARD_ACL_<ROLE>_PASSWORD (CONTROLLER, EDGE,
PROBER, KUBE, STREAM); a role without one is left out. With --format aclfile the password is
written as its SHA-256 (`#<hex>`), so the file holds no secret.

    SWITCHYARD_ACL_EDGE_PASSWORD=... python3 redis/acl.py | redis-cli -p 6380 -x ...
    python3 redis/acl.py --apply 127.0.0.1:6380     # runs the commands itself

What each role may do (docs/redis-ha.md, "ACL users"):

  controller  read everything of the schema; FCALL the write functions (sy_apply,
              sy_reseed, sy_digest, sy_migrate) and FUNCTION LOAD the library; trim the edges index.
              Functions run with the caller's rights, so the keys they write are writable
              for this user too: the separation that matters is between the controller and
              the edges, which can hold none of this.
  kube        the same as the controller (it writes through the same functions).
  prober      read the configuration; FCALL sy_health and sy_lease, which write the health
              keys, the lease and the heartbeat (and no other key: it cannot change a route
              either); subscribe to the change events. No FUNCTION LOAD: it relies on the
              controller to load the library.
  edge        read the configuration and health keys (read-only key permission), subscribe
              to the events and health events, and write registrations (edge:* and the
              edges index). No FCALL, no writes to any other key: an edge's credentials
              cannot change a route (NOPERM).
  stream      the stream role (docs/stream.md): read the configuration (streams are part of
              it) and health keys (read-only) and subscribe to the events and health events.
              It writes nothing.

With --group NAME the users reach only that group's keys and channels (switchyard:{NAME}:*,
redis/README.md "Groups") and are named <prefix>NAME-<role>; run it once per group.

Every role may also PING, ROLE (the master check with Sentinel), CLIENT SETNAME, and
WAIT (controller, kube: --redis-min-replicas-ack).
"""
import argparse
import hashlib
import os
import re
import shlex
import subprocess
import sys

DEFAULT_GROUP = "cfg"
GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
# The default group's prefix (redis/README.md, "Groups"): switchyard:{<group>}:
PREFIX = f"switchyard:{{{DEFAULT_GROUP}}}:"

COMMON = ["+ping", "+role", "+client|setname", "+auth", "+hello"]

READ_CONFIG = ["+get", "+mget", "+hget", "+hmget", "+hgetall", "+hkeys", "+exists", "+smembers",
               "+smismember", "+sismember", "+scard", "+xrange", "+xrevrange", "+zrange",
               "+zrangebyscore", "+pttl", "+ttl", "+type"]

# What the Function library runs inside the functions (redis/switchyard.lua): commands a
# function calls are checked against the caller's ACL.
# (e2e/test_redis_acl.py checks that this list covers every command the library names.)
FUNCTION_BODY = ["+del", "+hdel", "+hset", "+hvals", "+incr", "+incrby", "+mset", "+pexpire",
                 "+publish", "+sadd", "+srem", "+set", "+xadd", "+xlen", "+xtrim", "+time"]


def group_prefix(group):
    """switchyard:{<group>}: , every key (and channel) of one group."""
    return f"switchyard:{{{group}}}:"


def roles_for(group=DEFAULT_GROUP):
    """Every role's key patterns, channels and commands, for the keys of one group: a user
    made for group A matches no key or channel of group B."""
    prefix = group_prefix(group)
    k = prefix + "*"
    roles = {
        "controller": {
            "keys": [f"~{k}"],
            "channels": [f"&{k}"],
            "commands": COMMON + READ_CONFIG + FUNCTION_BODY
            + ["+fcall", "+fcall_ro", "+function|load", "+function|list", "+wait", "+multi",
               "+exec", "+discard",
               "+zremrangebyscore", "+subscribe", "+unsubscribe"],
        },
        "prober": {
            # read-only everywhere in the schema, read-write on what sy_health and sy_lease
            # write (redis/switchyard.lua)
            "keys": [f"%R~{k}", f"%RW~{prefix}health:*", f"%RW~{prefix}health_upstreams",
                     f"%RW~{prefix}health_version", f"%RW~{prefix}prober:*"],
            "channels": [f"&{prefix}events", f"&{prefix}health_events"],
            "commands": COMMON + READ_CONFIG + FUNCTION_BODY
            + ["+fcall", "+fcall_ro", "+subscribe", "+unsubscribe"],
        },
        "edge": {
            # read-only everywhere in the schema, read-write on registrations
            "keys": [f"%R~{k}", f"%RW~{prefix}edge:*", f"%RW~{prefix}edges"],
            "channels": [f"&{prefix}events", f"&{prefix}health_events"],
            "commands": COMMON + READ_CONFIG + ["+hset", "+expire", "+zadd", "+subscribe",
                                                "+unsubscribe"],
        },
    }
    roles["stream"] = {
        "keys": [f"%R~{k}"],
        "channels": [f"&{prefix}events", f"&{prefix}health_events"],
        "commands": COMMON + READ_CONFIG + ["+subscribe", "+unsubscribe"],
    }
    roles["kube"] = dict(roles["controller"])
    return roles


ROLES = roles_for(DEFAULT_GROUP)


def password_variable(role):
    return f"SWITCHYARD_ACL_{role.upper()}_PASSWORD"


def rules(role, password, hashed, group=DEFAULT_GROUP):
    """The ACL rules of one user (a list of words), scoped to one group's keys."""
    spec = roles_for(group)[role]
    secret = ("#" + hashlib.sha256(password.encode()).hexdigest()) if hashed else (">" + password)
    return ["on", "resetpass", secret, "resetkeys", *spec["keys"], "resetchannels",
            *spec["channels"], "-@all", *spec["commands"]]


def user_name(role, prefix, group=DEFAULT_GROUP):
    """<prefix><role> in the default group (the names before groups), <prefix><group>-<role>
    in another, so one Redis holds the users of several groups side by side."""
    if group == DEFAULT_GROUP:
        return f"{prefix}{role}"
    return f"{prefix}{group}-{role}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--format", choices=("setuser", "aclfile"), default="setuser")
    p.add_argument("--prefix", default="switchyard-",
                   help="user names are <prefix><role> (default: switchyard-)")
    p.add_argument("--roles", default="controller,kube,prober,edge,stream")
    p.add_argument("--group", default=DEFAULT_GROUP,
                   help="the group (switchyard ... --group) whose keys the users may reach: "
                        "switchyard:{GROUP}:*; users are <prefix><group>-<role> outside the "
                        "default group cfg")
    p.add_argument("--lock-default", action="store_true",
                   help="also make the default user answer PING only (no password: health "
                        "probes), so nothing reaches the data without a role's user")
    p.add_argument("--apply", metavar="HOST:PORT",
                   help="send the ACL SETUSER commands to this Redis with redis-cli "
                        "(its own credentials from REDISCLI_AUTH)")
    args = p.parse_args(argv)
    if not GROUP_RE.match(args.group):
        p.error(f"--group {args.group!r}: 1-48 characters from a-z 0-9 _ -, starting with a "
                "letter or digit")
    out = []
    for role in args.roles.split(","):
        if role not in ROLES:
            p.error(f"unknown role {role!r}")
        password = os.environ.get(password_variable(role))
        if not password:
            print(f"# {role}: {password_variable(role)} is not set; skipped", file=sys.stderr)
            continue
        words = rules(role, password, hashed=args.format == "aclfile", group=args.group)
        name = user_name(role, args.prefix, args.group)
        out.append((["ACL", "SETUSER", name, *words], f"user {name} " + " ".join(words)))
    if args.lock_default:
        words = ["on", "nopass", "resetkeys", "resetchannels", "-@all", "+ping", "+auth",
                 "+hello"]
        out.append((["ACL", "SETUSER", "default", *words], "user default " + " ".join(words)))
    if args.apply:
        host, _, port = args.apply.rpartition(":")
        for command, _ in out:
            r = subprocess.run(["redis-cli", "-h", host or "127.0.0.1", "-p", port, *command],
                               capture_output=True, text=True, timeout=10)
            if r.returncode != 0 or r.stdout.strip() != "OK":
                print(f"ACL SETUSER {command[2]} failed: {(r.stdout + r.stderr).strip()}",
                      file=sys.stderr)
                return 1
        return 0
    for command, line in out:
        # the setuser form holds the password: print it only where asked to
        print(line if args.format == "aclfile" else " ".join(shlex.quote(w) for w in command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
