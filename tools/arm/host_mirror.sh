#!/usr/bin/env bash
# Prints the Debian archive this host's apt already uses (the first `deb` source that is not the
# security archive), for run_on_arm.sh's debootstrap; one line on stderr and status 1 when there
# is none. Reads $APT_DIR (default /etc/apt): sources.list and sources.list.d/*.list (one-line
# format), sources.list.d/*.sources (deb822 format).
set -euo pipefail

APT_DIR="${APT_DIR:-/etc/apt}"

one_line_sources() {
    # deb [options] URL suite components...
    local file
    for file in "$APT_DIR/sources.list" "$APT_DIR"/sources.list.d/*.list; do
        [[ -f "$file" ]] || continue
        sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}\([^[:space:]]\+\).*/\2/p' "$file"
    done
}

deb822_sources() {
    # Stanzas of "Types: deb ..." and "URIs: URL ..."; a stanza without the deb type is skipped.
    local file
    for file in "$APT_DIR"/sources.list.d/*.sources; do
        [[ -f "$file" ]] || continue
        awk 'BEGIN { deb = 0; uris = "" }
             /^[[:space:]]*$/ { if (deb && uris != "") print uris; deb = 0; uris = ""; next }
             /^Types:/ { deb = ($0 ~ /[[:space:]]deb([[:space:]]|$)/) }
             /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); split($0, parts, /[[:space:]]+/); uris = parts[1] }
             END { if (deb && uris != "") print uris }' "$file"
    done
}

mirror="$({ one_line_sources; deb822_sources; } | grep -v -- '-security' | grep -E '^https?://' | head -n 1 || true)"
if [[ -z "$mirror" ]]; then
    echo "host_mirror: no Debian archive in $APT_DIR/sources.list or $APT_DIR/sources.list.d/ (*.list, *.sources); pass --mirror URL" >&2
    exit 1
fi
echo "${mirror%/}"
