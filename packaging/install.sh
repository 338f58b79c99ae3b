#!/usr/bin/env bash
# Installs openalgo-agent for the current user: builds release binaries, then copies
#   openalgo-agent, oactl           -> ~/.local/bin
#   the three systemd user units    -> ~/.config/systemd/user
#   man pages                       -> ~/.local/share/man
#   oactl completions (bash, zsh, fish), the sample agent.toml
#                                   -> ~/.local/share/...
# and records what it created in ~/.local/share/openalgo-agent/install-manifest, which
# `--uninstall` reads to remove exactly that (your ~/.config/openalgo is never touched).
#
# With --prefix (system-wide packagers) everything goes under PREFIX, units to
# PREFIX/lib/systemd/user; DESTDIR stages the tree for a package.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: packaging/install.sh [--prefix DIR] [--configuration release|debug] [--bin-dir DIR] [--uninstall]

  --prefix DIR          install under DIR (bin/, share/man, lib/systemd/user) instead of
                        ~/.local and ~/.config/systemd/user
  --configuration NAME  the Swift build configuration to build and install (default release)
  --bin-dir DIR         install the binaries already built in DIR; do not build
  --uninstall           remove what an earlier install with the same --prefix created
  -h, --help            show this help

Environment: DESTDIR stages the installation under another root (for packages).

After installing:
  systemctl --user daemon-reload
  systemctl --user enable --now openalgo-agent-ws.socket openalgo-agent-ipc.socket
  systemctl --user status openalgo-agent
  journalctl --user -u openalgo-agent
USAGE
}

prefix=""
configuration=release
bin_dir=""
uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --configuration) configuration=${2:?--configuration needs release or debug}; shift 2 ;;
        --configuration=*) configuration=${1#*=}; shift ;;
        --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
        --bin-dir=*) bin_dir=${1#*=}; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage >&2; exit 64 ;;
    esac
done
case "$configuration" in release | debug) ;; *) echo "install.sh: --configuration is release or debug, not $configuration" >&2; exit 64 ;; esac

source_dir=$(cd "$(dirname "$0")/.." && pwd)
destdir=${DESTDIR:-}
if [ -n "$prefix" ]; then
    case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
    bin="$prefix/bin"
    share="$prefix/share"
    units="$prefix/lib/systemd/user"
    exec_start="$prefix/bin/openalgo-agent serve"
else
    : "${HOME:?HOME is not set}"
    bin="$HOME/.local/bin"
    share="${XDG_DATA_HOME:-$HOME/.local/share}"
    units="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
    exec_start="%h/.local/bin/openalgo-agent serve"
fi
manifest="$destdir$share/openalgo-agent/install-manifest"
unit_names=(openalgo-agent-ws.socket openalgo-agent-ipc.socket openalgo-agent.service)

# systemctl --user only when a user manager runs (not in containers, CI or packaging).
user_manager() {
    [ -z "$destdir" ] && [ -z "$prefix" ] && command -v systemctl >/dev/null &&
        systemctl --user show-environment >/dev/null 2>&1
}

if [ "$uninstall" = 1 ]; then
    if [ ! -f "$manifest" ]; then
        echo "install.sh: nothing to uninstall: $manifest does not exist" >&2
        exit 1
    fi
    if user_manager; then
        systemctl --user disable --now "${unit_names[@]}" >/dev/null 2>&1 || true
    fi
    # Files first, then the directories the install created, deepest first, if empty.
    mapfile -t dirs < <(cat "$manifest.dirs" 2>/dev/null || true)
    while IFS= read -r line; do
        case "$line" in f\ *) rm -f "$destdir${line#f }" ;; esac
    done <"$manifest"
    rm -f "$manifest" "$manifest.dirs"
    rmdir "$destdir$share/openalgo-agent" 2>/dev/null || true
    for ((index = ${#dirs[@]} - 1; index >= 0; index--)); do
        [ -n "${dirs[index]}" ] && rmdir "$destdir${dirs[index]}" 2>/dev/null || true
    done
    if user_manager; then systemctl --user daemon-reload || true; fi
    echo "uninstalled openalgo-agent"
    exit 0
fi

if [ -z "$bin_dir" ]; then
    (cd "$source_dir" && scripts/install-deps && swift build -c "$configuration" --product openalgo-agent && swift build -c "$configuration" --product oactl)
    bin_dir=$(cd "$source_dir" && swift build -c "$configuration" --show-bin-path)
fi
for binary in openalgo-agent oactl; do
    [ -x "$bin_dir/$binary" ] || { echo "install.sh: $bin_dir/$binary is missing; build it first" >&2; exit 1; }
done

created_dirs=()
files=()
make_dir() {
    local dir=$1 missing=()
    while [ ! -d "$destdir$dir" ]; do
        missing=("$dir" "${missing[@]}")
        dir=$(dirname "$dir")
    done
    for dir in "${missing[@]}"; do
        mkdir -m 0755 "$destdir$dir"
        created_dirs+=("$dir")
    done
}
put() {
    local mode=$1 source=$2 target=$3
    make_dir "$(dirname "$target")"
    install -m "$mode" "$source" "$destdir$target"
    files+=("$target")
}
put_text() {
    local target=$1
    make_dir "$(dirname "$target")"
    cat >"$destdir$target"
    chmod 0644 "$destdir$target"
    files+=("$target")
}

put 0755 "$bin_dir/openalgo-agent" "$bin/openalgo-agent"
put 0755 "$bin_dir/oactl" "$bin/oactl"
for unit in "${unit_names[@]}"; do
    put_text "$units/$unit" < <(sed "s|^ExecStart=.*|ExecStart=$exec_start|" "$source_dir/packaging/$unit")
done
put 0644 "$source_dir/man/openalgo-agent.1" "$share/man/man1/openalgo-agent.1"
put 0644 "$source_dir/man/oactl.1" "$share/man/man1/oactl.1"
put 0644 "$source_dir/man/openalgo-agent.toml.5" "$share/man/man5/openalgo-agent.toml.5"
put 0644 "$source_dir/packaging/agent.toml" "$share/doc/openalgo-agent/agent.toml.sample"
# Functions fed by process substitution, not pipes: a pipe would run them in a subshell and
# lose what they record for the manifest.
put_text "$share/bash-completion/completions/oactl" < <("$bin_dir/oactl" --generate-completion-script bash)
put_text "$share/zsh/site-functions/_oactl" < <("$bin_dir/oactl" --generate-completion-script zsh)
put_text "$share/fish/vendor_completions.d/oactl.fish" < <("$bin_dir/oactl" --generate-completion-script fish)

make_dir "$share/openalgo-agent"
# An upgrade keeps what the first install recorded, so --uninstall still removes its directories.
{
    [ -f "$manifest" ] && cat "$manifest"
    printf 'f %s\n' "${files[@]}"
} | awk '!seen[$0]++' >"$manifest.new"
mv "$manifest.new" "$manifest"
{
    [ -f "$manifest.dirs" ] && cat "$manifest.dirs"
    [ ${#created_dirs[@]} -gt 0 ] && printf '%s\n' "${created_dirs[@]}"
} | awk 'NF && !seen[$0]++' >"$manifest.dirs.new" || true
mv "$manifest.dirs.new" "$manifest.dirs"

if user_manager; then systemctl --user daemon-reload || true; fi
cat <<DONE
installed openalgo-agent to $destdir$bin, units to $destdir$units
Start it with socket activation:
  systemctl --user daemon-reload
  systemctl --user enable --now openalgo-agent-ws.socket openalgo-agent-ipc.socket
  systemctl --user status openalgo-agent      # it starts on the first client
A sample configuration: $share/doc/openalgo-agent/agent.toml.sample
DONE
