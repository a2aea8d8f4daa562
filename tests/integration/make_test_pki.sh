#!/usr/bin/env bash
# Builds a throwaway PKI with the openssl CLI (independent of wec's own `wec pki`) for the HTTPS
# tests: root CA -> issuing CA -> client certificates, a second unrelated CA, and the bad cases.
#   make_test_pki.sh DIR HOSTNAME [CLIENT...]
# Each extra CLIENT name gets a good client certificate from the issuing CA (CN=CLIENT).
set -euo pipefail
dir=$1
host=$2
shift 2
mkdir -p "$dir"
cd "$dir"
export OPENSSL_CONF=/dev/null

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# Root and issuing CA (Windows sends only its leaf: the collector must know both).
key root.key
openssl req -x509 -new -key root.key -subj "/CN=wec test root" -days 3650 -out root.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
key issuing.key
openssl req -new -key issuing.key -subj "/CN=wec test issuing CA" -out issuing.csr
cat > ca.ext <<EXT
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
EXT
openssl x509 -req -in issuing.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3650 \
  -extfile ca.ext -out issuing.pem 2>/dev/null

# A second, unrelated CA that is also configured, and one that is not.
for ca in other unknown; do
  key $ca.key
  openssl req -x509 -new -key $ca.key -subj "/CN=wec test $ca CA" -days 3650 -out $ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
done

# Server certificate (SAN: host name and 127.0.0.1), issued by the root.
key server.key
openssl req -new -key server.key -subj "/CN=$host" -out server.csr
cat > server.ext <<EXT
subjectAltName=DNS:$host,IP:127.0.0.1
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment
EXT
openssl x509 -req -in server.csr -CA root.pem -CAkey root.key -CAcreateserial -days 365 \
  -extfile server.ext -out server.pem 2>/dev/null

# The same server name with an RSA key and with an ECDSA P-384 key (Windows' cipher suites).
openssl genrsa -out server-rsa.key 2048 2>/dev/null
openssl ecparam -name secp384r1 -genkey -noout -out server-p384.key 2>/dev/null
for k in rsa p384; do
  openssl req -new -key server-$k.key -subj "/CN=$host" -out server-$k.csr
  openssl x509 -req -in server-$k.csr -CA root.pem -CAkey root.key -CAcreateserial -days 365 \
    -extfile server.ext -out server-$k.pem 2>/dev/null
done

# `openssl ca` for the issuing CA: needed for back-dated (expired) certificates and for a CRL.
mkdir -p ca.db
: > ca.db/index.txt
echo 1000 > ca.db/serial
echo 1000 > ca.db/crlnumber
cat > ca.cnf <<CNF
[ ca ]
default_ca = issuing
[ issuing ]
dir = $PWD/ca.db
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir
certificate = $PWD/issuing.pem
private_key = $PWD/issuing.key
default_md = sha256
default_crl_days = 30
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
[ client ]
extendedKeyUsage = clientAuth
keyUsage = critical,digitalSignature
[ noeku ]
keyUsage = critical,digitalSignature
CNF

client() { # name ca-section extensions [extra openssl ca args]
  local name=$1 ext=$2; shift 2
  key $name.key
  openssl req -new -key $name.key -subj "/CN=$name" -out $name.csr
  openssl ca -batch -config ca.cnf -extensions $ext -in $name.csr -out $name.pem -notext "$@" 2>/dev/null
}
client win10.windomain.local client -days 365
client noeku.windomain.local noeku -days 365
client expired.windomain.local client -startdate 20200101000000Z -enddate 20200201000000Z
client revoked.windomain.local client -days 365
for name in "$@"; do
  client "$name" client -days 365
done
# The issuing CA's CRL before and after the revocation (a CRL reload test swaps them).
openssl ca -batch -config ca.cnf -gencrl -out issuing-empty.crl 2>/dev/null
openssl ca -batch -config ca.cnf -revoke revoked.windomain.local.pem 2>/dev/null
openssl ca -batch -config ca.cnf -gencrl -out issuing.crl 2>/dev/null

# A client of the second configured CA, and one from a CA the collector does not know.
for pair in "dmz.example.org:other" "stranger.example.org:unknown"; do
  name=${pair%%:*}; ca=${pair##*:}
  key $name.key
  openssl req -new -key $name.key -subj "/CN=$name" -out $name.csr
  cat > $name.ext <<EXT
extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature
EXT
  openssl x509 -req -in $name.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial -days 365 \
    -extfile $name.ext -out $name.pem 2>/dev/null
done
echo "test PKI ready in $dir"
