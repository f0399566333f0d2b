#!/bin/sh
# SPDX-License-Identifier: MIT
# Makes the certificates of the TLS tests in directory $1 with the openssl
# command (no private key is committed):
#   ca         the test CA
#   server     localhost, IP 127.0.0.1 and ::1, from ca (server.pem: cert;
#              server.key: key; server-both.pem: both in one file)
#   other      other.test and *.other.test, from ca (for SNI)
#   expired    localhost, from ca, expired a day ago
#   self       localhost, self-signed
#   otherca    a second CA that signed nothing we use (the "wrong CA")
#   clientca   the CA of client certificates
#   client     CN=neap client, from clientca
set -e
d=${1:?usage: mkcerts.sh DIR}
mkdir -p "$d"
cd "$d"

key () {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

# ca NAME CN
ca () {
  key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 30 -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

# leaf NAME CA SUBJECT SAN DAYS EKU (DAYS -1: expired a day ago)
leaf () {
  key "$1"
  openssl req -new -key "$1.key" -subj "$3" -out "$1.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=%s\n' "$4" "$6" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -days "$5" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "neap test CA"
leaf server ca "/O=neap/CN=localhost" "DNS:localhost,IP:127.0.0.1,IP:::1" 30 serverAuth
cat server.pem server.key > server-both.pem
leaf other ca "/CN=other.test" "DNS:other.test,DNS:*.other.test" 30 serverAuth
leaf expired ca "/CN=localhost" "DNS:localhost" -1 serverAuth
key self
openssl req -x509 -new -key self.key -subj "/CN=localhost" -days 30 -out self.pem \
  -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE
ca otherca "neap other CA"
ca clientca "neap client CA"
leaf client clientca "/O=neap/CN=neap client" "DNS:client.test" 30 clientAuth
