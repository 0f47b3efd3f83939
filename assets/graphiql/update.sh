#!/usr/bin/env bash
# Re-fetches the vendored GraphiQL browser build and the React it runs on from the npm
# registry. Change the versions below, run this script, then update README.md and run the
# GraphiQL browser test (cargo test --test api graphiql::).
set -euo pipefail

GRAPHIQL_VERSION=3.9.0
REACT_VERSION=18.3.1

here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

npm pack --silent "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" >/dev/null
unpack() { mkdir "$1" && tar -xzf "$1-$2.tgz" -C "$1"; }
unpack graphiql "$GRAPHIQL_VERSION"
unpack react "$REACT_VERSION"
unpack react-dom "$REACT_VERSION"

cp graphiql/package/graphiql.min.js graphiql/package/graphiql.min.css "$here/"
cp react/package/umd/react.production.min.js "$here/"
cp react-dom/package/umd/react-dom.production.min.js "$here/"
cp graphiql/package/LICENSE "$here/LICENSE.graphiql"
cp react/package/LICENSE "$here/LICENSE.react"
cp react-dom/package/LICENSE "$here/LICENSE.react-dom"

cd "$here"
sha256sum graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js
