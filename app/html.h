/*
 * Server-rendered HTML pages (payment link and mandate pages): one page
 * skeleton with inline CSS under a per-response CSP nonce, and escaping of
 * every dynamic value. No external assets, no JavaScript.
 */
#ifndef PAY_APP_HTML_H
#define PAY_APP_HTML_H

#include "req.h"

struct html_page {
    struct abuf b;      /* the document; append with abuf_* and html_esc */
    const char *nonce;  /* CSP nonce of this response's style sheet */
};

/* Appends s with & < > " ' escaped. NULL appends nothing. */
void html_esc(struct abuf *b, const char *s);
/* Starts a page: doctype, head (title, viewport, styles), body, <main>. */
void html_begin(struct req *r, struct html_page *p, const char *title);
/* Closes the page, sets the security headers (CSP with the page's nonce;
 * extra_form_action: additional origins forms may post/redirect to, or
 * NULL) and makes it the response. Returns status. */
int html_end(struct req *r, struct html_page *p, int status,
             const char *extra_form_action);
/* The scheme://host[:port] part of an absolute URL (arena), or NULL. */
char *html_origin(struct arena *a, const char *url);

#endif
