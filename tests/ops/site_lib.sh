# shellcheck shell=bash
# tests/ops/site_lib.sh — sourced by tests/stack.sh (PAY_TLS=1),
# tests/ops/verify_nginx.sh and tests/ops/verify_tls.sh: a throw-away test PKI
# and the production nginx site (nginx/pay-api.conf) rendered into a private
# nginx prefix, so that what the tests run is the shipped file.
#
#   site_make_certs DIR [OCSP_URL]
#       DIR/ca.pem, ca.key            test root CA (EC P-256), what clients trust
#       DIR/inter.pem, inter.key      intermediate CA that signs the server
#       DIR/fullchain.pem             server certificate (RSA 2048, SAN
#                                     IP:127.0.0.1 and DNS:localhost, 30 days)
#                                     followed by the intermediate: certbot's names
#       DIR/privkey.pem               its key
#       DIR/chain.pem                 intermediate + root (ssl_trusted_certificate)
#       DIR/cert.pem                  the server certificate alone
#       DIR/ocsp-index.txt            "openssl ocsp -index" database: cert.pem valid
#     With OCSP_URL the server certificate names that OCSP responder (AIA).
#
#   site_render SRC_NGINX_DIR PREFIX HTTP_PORT HTTPS_PORT SOCK CERT_DIR ACME_DIR
#       PREFIX/nginx.conf             minimal main config: pid, logs, temp paths
#                                     inside PREFIX, "include site.conf"
#       PREFIX/site.conf              nginx/pay-api.conf with only these changed:
#                                       listen 80  -> 127.0.0.1:HTTP_PORT
#                                       listen 443 -> 127.0.0.1:HTTPS_PORT
#                                       /run/pay-api/fcgi.sock -> SOCK
#                                       /etc/letsencrypt/live/pay.example.com -> CERT_DIR
#                                       /var/www/letsencrypt -> ACME_DIR
#       PREFIX/snippets/              pay-api-locations.conf, pay-api-ffdhe2048.pem
#       PREFIX/fastcgi_params         Debian's
#     Returns non-zero with a message on stderr when a substitution found
#     nothing to change (the shipped file moved on: fix the test, not around it).
#     Run: nginx -p PREFIX -c PREFIX/nginx.conf [-g 'daemon off;']

site_make_certs() {  # DIR [OCSP_URL]
    local d=$1 ocsp=${2:-} aia=''
    mkdir -p "$d"
    [ -z "$ocsp" ] || aia="authorityInfoAccess = OCSP;URI:$ocsp"
    (
        set -e
        umask 077
        cd "$d"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
        openssl req -x509 -new -key ca.key -sha256 -days 30 -subj '/CN=pay-api test root CA' \
            -addext 'basicConstraints = critical, CA:true' \
            -addext 'keyUsage = critical, keyCertSign, cRLSign' \
            -addext 'subjectKeyIdentifier = hash' -out ca.pem
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out inter.key 2>/dev/null
        openssl req -new -key inter.key -subj '/CN=pay-api test intermediate CA' -out inter.csr
        cat > inter.ext <<EXT
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT
        openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 \
            -days 30 -extfile inter.ext -out inter.pem 2>/dev/null
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out privkey.pem 2>/dev/null
        openssl req -new -key privkey.pem -subj '/CN=127.0.0.1' -out server.csr
        cat > server.ext <<EXT
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
$aia
EXT
        openssl x509 -req -in server.csr -CA inter.pem -CAkey inter.key -CAcreateserial -sha256 \
            -days 30 -extfile server.ext -out cert.pem 2>/dev/null
        cat cert.pem inter.pem > fullchain.pem
        cat inter.pem ca.pem > chain.pem
        # openssl ocsp's index: V <expiry YYMMDDHHMMSSZ> <no revocation> <serial> unknown <subject>
        local serial end
        serial=$(openssl x509 -in cert.pem -noout -serial | sed 's/^serial=//')
        end=$(date -u -d "$(openssl x509 -in cert.pem -noout -enddate | sed 's/^notAfter=//')" +%y%m%d%H%M%SZ)
        printf 'V\t%s\t\t%s\tunknown\t/CN=127.0.0.1\n' "$end" "$serial" > ocsp-index.txt
        rm -f inter.csr server.csr inter.ext server.ext ./*.srl
        chmod 644 ca.pem inter.pem cert.pem fullchain.pem chain.pem ocsp-index.txt
    ) || { echo "site_make_certs: openssl failed in $d" >&2; return 1; }
}

site_render() {  # SRC_NGINX_DIR PREFIX HTTP_PORT HTTPS_PORT SOCK CERT_DIR ACME_DIR
    local src=$1 p=$2 http=$3 https=$4 sock=$5 certs=$6 acme=$7 f
    for f in pay-api.conf pay-api-locations.conf ffdhe2048.pem; do
        [ -r "$src/$f" ] || { echo "site_render: missing $src/$f" >&2; return 1; }
    done
    mkdir -p "$p/snippets" "$p/tmp"
    cp /etc/nginx/fastcgi_params "$p/fastcgi_params"
    cp "$src/pay-api-locations.conf" "$p/snippets/pay-api-locations.conf"
    cp "$src/ffdhe2048.pem" "$p/snippets/pay-api-ffdhe2048.pem"
    # Each pattern must match in the shipped file, or the test would silently
    # run something else than production.
    local -a subst=(
        "^([[:space:]]*listen[[:space:]]+)80([[:space:]]+default_server;)|\\1127.0.0.1:$http\\2"
        "^([[:space:]]*listen[[:space:]]+)443([[:space:]]+ssl[[:space:]])|\\1127.0.0.1:$https\\2"
        "unix:/run/pay-api/fcgi\\.sock;|unix:$sock;"
        "/etc/letsencrypt/live/pay\\.example\\.com/|$certs/"
        "([[:space:]]root[[:space:]]+)/var/www/letsencrypt;|\\1$acme;"
    )
    local s pat text
    text=$(cat "$src/pay-api.conf")
    for s in "${subst[@]}"; do
        pat=${s%%|*}
        grep -Eq "$pat" <<<"$text" || { echo "site_render: nginx/pay-api.conf no longer matches /$pat/" >&2; return 1; }
        text=$(sed -E "s|$s|g" <<<"$text")
    done
    printf '%s\n' "$text" > "$p/site.conf"
    cat > "$p/nginx.conf" <<CONF
# Rendered by tests/ops/site_lib.sh: nginx/pay-api.conf (as site.conf) in a
# private prefix.
worker_processes 1;
pid       $p/nginx.pid;
error_log $p/error.log info;
events { worker_connections 256; }
http {
    log_format pay '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent '
                   'rt=\$request_time ut=\$upstream_response_time us=\$upstream_status '
                   'rid=\$pay_request_id \$ssl_protocol/\$ssl_cipher';
    access_log $p/access.log pay;
    client_body_temp_path $p/tmp/body;
    fastcgi_temp_path     $p/tmp/fastcgi;
    proxy_temp_path       $p/tmp/proxy;
    uwsgi_temp_path       $p/tmp/uwsgi;
    scgi_temp_path        $p/tmp/scgi;
    include site.conf;
}
CONF
}
