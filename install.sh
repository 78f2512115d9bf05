#!/usr/bin/env bash
# Installs docker trustacr as a Docker CLI plugin and as the standalone command docker-trust-acr.
#
#   ./install.sh              build (cargo build --release --locked) and install for this user:
#                               ${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-trustacr
#                               ~/.local/bin/docker-trust-acr -> that file
#   ./install.sh --system     install for everyone (root):
#                               /usr/local/lib/docker/cli-plugins/docker-trustacr
#                               /usr/local/bin/docker-trust-acr -> that file
#   ./install.sh --from FILE  install FILE instead of building
#   ./install.sh --uninstall  remove what the same command without --uninstall installed
#
# Running it again replaces the installed binary in place; nothing else changes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
system=0 uninstall=0 from=""

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --system) system=1 ;;
        --uninstall) uninstall=1 ;;
        --from) from=${2:?--from needs a file}; shift ;;
        --from=*) from=${1#--from=} ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

if [ $system = 1 ]; then
    plugin_dir=/usr/local/lib/docker/cli-plugins
    bin_dir=/usr/local/bin
else
    [ -n "${HOME:-}" ] || { echo "install.sh: HOME is not set" >&2; exit 1; }
    plugin_dir=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
    bin_dir=$HOME/.local/bin
fi
plugin=$plugin_dir/docker-trustacr
link=$bin_dir/docker-trust-acr

if [ $uninstall = 1 ]; then
    rm -f "$plugin" "$link"
    echo "Removed $plugin and $link"
    exit 0
fi

if [ -z "$from" ]; then
    command -v cargo >/dev/null || { echo "install.sh: cargo is needed to build (https://rustup.rs), or pass --from FILE" >&2; exit 1; }
    (cd "$here" && cargo build --release --locked)
    from=${CARGO_TARGET_DIR:-$here/target}/release/docker-trustacr
fi
[ -x "$from" ] || { echo "install.sh: $from is not an executable file" >&2; exit 1; }

mkdir -p "$plugin_dir" "$bin_dir"
# Copy next to the target and rename: a running docker never sees a half-written plugin.
tmp=$(mktemp "$plugin_dir/.docker-trustacr.XXXXXX")
cp "$from" "$tmp"
chmod 755 "$tmp"
mv -f "$tmp" "$plugin"
ln -sfn "$plugin" "$link"

echo "Installed the Docker CLI plugin: $plugin"
echo "Linked the standalone command:   $link"
case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) echo "Note: $bin_dir is not on your PATH; add it to run docker-trust-acr directly." ;;
esac
if [ $system = 0 ] && [ -n "${DOCKER_CONFIG:-}" ]; then
    echo "Note: the plugin is found only while DOCKER_CONFIG=$DOCKER_CONFIG (or --config with that dir)."
fi
echo
echo "Check it with:"
echo "  docker trustacr --help"
echo "  docker trustacr info"
