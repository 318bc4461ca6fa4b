// libcurl (easy + multi socket interface) and the epoll plumbing that drives it.
// Wrapped by SwitchyardProber/Checks/Curl.swift; nothing else imports this.
//
// curl_easy_setopt and friends are variadic, which Swift cannot call, so each argument
// type gets a typed inline wrapper. The multi handles are driven with
// curl_multi_socket_action: curl tells us (sy_curl_socket_cb) which sockets to watch and
// (sy_curl_timer_cb) when it wants to be called, and one epoll instance watches the
// sockets of every multi handle (one per shard) — see Curl.swift for why there are shards.
#ifndef SWITCHYARD_CCURL_SHIM_H
#define SWITCHYARD_CCURL_SHIM_H
#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline CURLcode sy_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sy_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sy_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sy_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLMcode sy_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

/* Health answers are read and thrown away. */
static size_t sy_curl_discard(char *data, size_t size, size_t count, void *user) {
    (void)data; (void)user;
    return size * count;
}
static inline CURLcode sy_curl_discard_body(CURL *h) {
    return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sy_curl_discard);
}

static inline int64_t sy_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One multi handle's link to the shared epoll instance. */
struct sy_shard {
    int epfd;
    uint32_t index;
    /* when curl wants curl_multi_socket_action(CURL_SOCKET_TIMEOUT), monotonic ms; -1 = never */
    int64_t deadline_ms;
};

/* epoll data of a curl socket: shard index in the high half, fd in the low half. */
static inline uint64_t sy_epoll_key(uint32_t shard, int fd) { return ((uint64_t)shard << 32) | (uint32_t)fd; }

static int sy_curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)easy; (void)socketp;
    struct sy_shard *shard = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(shard->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {0};
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    ev.data.u64 = sy_epoll_key(shard->index, s);
    if (epoll_ctl(shard->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT) {
        epoll_ctl(shard->epfd, EPOLL_CTL_ADD, s, &ev);
    }
    return 0;
}

static int sy_curl_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    struct sy_shard *shard = userp;
    shard->deadline_ms = timeout_ms < 0 ? -1 : sy_monotonic_ms() + timeout_ms;
    return 0;
}

static inline void sy_curl_multi_attach(CURLM *multi, struct sy_shard *shard) {
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sy_curl_socket_cb);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, shard);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, sy_curl_timer_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, shard);
}

/* Waits up to timeout_ms; for each ready fd stores its key and CURL_CSELECT_* flags. */
static inline int sy_epoll_wait(int epfd, uint64_t *keys, int *flags, int max, int timeout_ms) {
    struct epoll_event events[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        uint32_t e = events[i].events;
        keys[i] = events[i].data.u64;
        flags[i] = ((e & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) ? CURL_CSELECT_IN : 0)
                 | ((e & EPOLLOUT) ? CURL_CSELECT_OUT : 0) | ((e & EPOLLERR) ? CURL_CSELECT_ERR : 0);
    }
    return n;
}

/* The wake-up eventfd, watched with key UINT64_MAX. */
static inline int sy_eventfd_open(int epfd) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -1;
    struct epoll_event ev = {0};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) { close(fd); return -1; }
    return fd;
}
/* A socket of the prober's own http/tcp checks (PlainProbes.swift), watched edge-triggered
   for the whole life of the connection: one epoll_ctl per connection, none per probe. */
static inline int sy_epoll_watch_socket(int epfd, int fd, uint64_t key) {
    struct epoll_event ev = {0};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = key;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}
static inline int sy_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}
static inline void sy_eventfd_signal(int fd) { uint64_t one = 1; ssize_t r = write(fd, &one, sizeof one); (void)r; }
static inline void sy_eventfd_drain(int fd) { uint64_t v; ssize_t r = read(fd, &v, sizeof v); (void)r; }
#endif
