/*
 * HTML pages. The style sheet is inline and allowed by a nonce that is new
 * for every response, so the Content-Security-Policy can forbid everything
 * else (scripts, frames, images, other origins). Pages are small and
 * readable on a 375 px wide screen.
 */
#include "html.h"

#include <string.h>

#include "token.h"

static const char css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#1a1a1a;background:#f4f5f7}"
    "main{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;"
    "border-radius:.75rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}"
    "@media (max-width:480px){main{margin:0;border-radius:0;min-height:100vh}}"
    "h1{font-size:1.4rem;margin:0 0 1rem}"
    "dl{margin:0 0 1.5rem}dt{font-size:.85rem;color:#555;margin-top:.75rem}"
    "dd{margin:0;font-size:1.1rem;overflow-wrap:anywhere}"
    ".amount{font-size:2rem;font-weight:700}"
    "label{display:block;font-weight:600;margin-top:1rem}"
    "input{width:100%;font-size:1.1rem;padding:.6rem;border:1px solid #767676;"
    "border-radius:.4rem;margin-top:.25rem}"
    "input:focus,button:focus{outline:3px solid #ffbf47;outline-offset:1px}"
    "button{display:block;width:100%;margin-top:1.5rem;padding:.9rem;font-size:1.15rem;"
    "font-weight:700;color:#fff;background:#00703c;border:0;border-radius:.4rem;cursor:pointer}"
    ".hint{font-size:.85rem;color:#555}"
    ".error{color:#b00020;font-weight:600}"
    ".ok{color:#00703c}"
    "footer{margin-top:1.5rem;font-size:.8rem;color:#555}";

void
html_esc(struct abuf *b, const char *s)
{
    if (s == NULL)
        return;
    for (; *s; s++) {
        switch (*s) {
        case '&':  abuf_adds(b, "&amp;"); break;
        case '<':  abuf_adds(b, "&lt;"); break;
        case '>':  abuf_adds(b, "&gt;"); break;
        case '"':  abuf_adds(b, "&quot;"); break;
        case '\'': abuf_adds(b, "&#39;"); break;
        default:   abuf_add(b, s, 1);
        }
    }
}

void
html_begin(struct req *r, struct html_page *p, const char *title)
{
    p->nonce = token_random(r->arena, 16);
    abuf_init(&p->b, r->arena);
    abuf_adds(&p->b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                     "<meta name=\"referrer\" content=\"same-origin\"><title>");
    html_esc(&p->b, title);
    abuf_printf(&p->b, "</title><style nonce=\"%s\">%s</style></head><body><main>",
                p->nonce, css);
}

int
html_end(struct req *r, struct html_page *p, int status, const char *extra_form_action)
{
    abuf_adds(&p->b, "</main></body></html>\n");
    resp_header(r, "Content-Security-Policy",
                arena_printf(r->arena,
                             "default-src 'none'; style-src 'nonce-%s'; "
                             "form-action 'self'%s%s; frame-ancestors 'none'; "
                             "base-uri 'none'",
                             p->nonce, extra_form_action ? " " : "",
                             extra_form_action ? extra_form_action : ""));
    resp_header(r, "X-Frame-Options", "DENY");
    /* same-origin, not no-referrer: under no-referrer browsers send
     * "Origin: null" on the page's own form post, defeating the check. */
    resp_header(r, "Referrer-Policy", "same-origin");
    return resp_body(r, status, "text/html; charset=utf-8", p->b.p, p->b.len);
}

char *
html_origin(struct arena *a, const char *url)
{
    const char *p = strstr(url ? url : "", "://");
    if (p == NULL)
        return NULL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    return arena_strndup(a, url, (size_t)(p - url) + n);
}
