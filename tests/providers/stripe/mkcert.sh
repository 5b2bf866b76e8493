#!/bin/bash
# Makes a throw-away test CA and a server certificate for 127.0.0.1 /
# localhost in DIR (ca.pem, server.pem, server.key): the Stripe double
# serves HTTPS with them and its clients trust ca.pem and nothing else.
#   tests/providers/stripe/mkcert.sh DIR
set -euo pipefail
dir=${1:?usage: mkcert.sh DIR}
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pay-api test CA (stripe double)" \
    -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile ext.cnf -out server.pem 2>/dev/null
chmod 600 ca.key server.key
