#!/usr/bin/env bash
# Makes the real `lszcrypt` of s390-tools 2.16.0 (Debian's s390x build) runnable on this machine
# under qemu-user, and prints the path of a wrapper script that runs it:
#
#   lszcrypt="$(bash hack/s390-tools.sh)"
#   SYSFS_ROOT=/tmp/rendered "$lszcrypt" -V
#
# s390-tools read sysfs below $SYSFS_ROOT, so a tree written by `apqn-operator sim --render DIR`
# can be listed exactly as on an IBM Z host. Everything goes to a cache outside the repository:
#   ${APQN_CACHE_DIR:-$HOME/.cache/apqn-operator}/s390-tools-2.16.0/
# The first run needs Debian's apt (Debian 12 "bookworm" ships s390-tools 2.16.0-2 for s390x)
# and root: it enables the s390x architecture for apt, updates the package lists, and
# downloads three packages (nothing is installed). Later runs only check the cache.
# Errors go to stderr with what to do; the exit status is then 1.
set -euo pipefail

readonly S390_TOOLS_VERSION="2.16.0"
readonly S390_TOOLS_DEB_VERSION="2.16.0-2"
cache_root="${APQN_CACHE_DIR:-${HOME:?HOME is not set; set APQN_CACHE_DIR}/.cache/apqn-operator}"
readonly dest="$cache_root/s390-tools-$S390_TOOLS_VERSION"
readonly wrapper="$dest/bin/lszcrypt"

die() {
  printf 's390-tools.sh: %s\n' "$*" >&2
  exit 1
}

# The wrapper answers `-v` with the s390-tools version: a cache that does is complete.
cache_works() {
  [[ -x "$wrapper" ]] && "$wrapper" -v 2>/dev/null | grep -q "version $S390_TOOLS_VERSION"
}

if cache_works; then
  printf '%s\n' "$wrapper"
  exit 0
fi

for tool in apt-get apt-cache dpkg dpkg-deb; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "needs '$tool' (a Debian or Ubuntu machine) to fetch s390-tools $S390_TOOLS_DEB_VERSION for s390x; not found on PATH"
done

# Debian's archive serves s390x packages next to amd64/arm64 ones; Ubuntu's main archive does
# not (ports.ubuntu.com does, with other versions), and adding the architecture there would break
# every later `apt-get update`. So only Debian's sources are used.
os_id="$(. /etc/os-release 2>/dev/null && echo "${ID:-}")"
[[ "$os_id" == debian ]] ||
  die "fetching s390-tools $S390_TOOLS_DEB_VERSION needs Debian package sources (this is '${os_id:-unknown}'); run this once in a Debian 12 (bookworm) environment, or set APQN_CACHE_DIR to a cache made there"

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "must run '$*' as root (run this script as root once, or allow passwordless sudo); the cache is then reused without root"
  fi
}

# apt must know s390x packages before it can download them.
if ! dpkg --print-foreign-architectures | grep -qx s390x; then
  echo "s390-tools.sh: enabling the s390x architecture for apt (dpkg --add-architecture s390x)" >&2
  as_root dpkg --add-architecture s390x
fi
if ! apt-cache show "s390-tools:s390x=$S390_TOOLS_DEB_VERSION" >/dev/null 2>&1; then
  echo "s390-tools.sh: updating apt package lists" >&2
  as_root apt-get update -qq >&2 || die "apt-get update failed (see above)"
fi
if ! apt-cache show "s390-tools:s390x=$S390_TOOLS_DEB_VERSION" >/dev/null 2>&1; then
  offered="$(apt-cache policy s390-tools:s390x 2>/dev/null | awk '/Candidate:/ {print $2}')"
  die "apt offers no s390-tools:s390x $S390_TOOLS_DEB_VERSION (candidate: ${offered:-none}). The golden outputs are those of 2.16.0: use Debian 12 (bookworm) package sources."
fi

# Build next to the destination and rename into place, so a concurrent or interrupted run
# never leaves a half-extracted cache behind.
mkdir -p "$cache_root"
work="$(mktemp -d "$cache_root/.s390-tools.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/root/bin"
(
  cd "$work/debs"
  # _apt cannot write into a private temporary directory; download as the current user.
  apt-get download -qq -o APT::Sandbox::User="$(id -un)" \
    "s390-tools:s390x=$S390_TOOLS_DEB_VERSION" libc6:s390x qemu-user-static >&2
) || die "apt-get download of s390-tools:s390x, libc6:s390x and qemu-user-static failed (see above)"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$work/root" || die "cannot unpack $deb"
done
[[ -x "$work/root/sbin/lszcrypt" ]] || die "the s390-tools package holds no sbin/lszcrypt"
[[ -x "$work/root/usr/bin/qemu-s390x-static" ]] || die "the qemu-user-static package holds no usr/bin/qemu-s390x-static"

cat >"$work/root/bin/lszcrypt" <<'EOF'
#!/bin/sh
# lszcrypt from Debian's s390-tools 2.16.0 (s390x) under qemu-user; written by hack/s390-tools.sh.
# It reads the sysfs tree below $SYSFS_ROOT (default /sys).
here="$(cd "$(dirname "$0")/.." && pwd)"
exec "$here/usr/bin/qemu-s390x-static" -L "$here" "$here/sbin/lszcrypt" "$@"
EOF
chmod 0755 "$work/root/bin/lszcrypt"
"$work/root/bin/lszcrypt" -v 2>&1 | grep -q "version $S390_TOOLS_VERSION" ||
  die "the unpacked lszcrypt does not run under qemu-user: $("$work/root/bin/lszcrypt" -v 2>&1 | head -n 3)"

# Another run may have finished meanwhile: keep its cache, drop ours.
if ! cache_works; then
  rm -rf "$dest"
  mv "$work/root" "$dest" 2>/dev/null || cache_works || die "cannot move the unpacked tools to $dest"
fi
cache_works || die "$wrapper does not run after unpacking"
printf '%s\n' "$wrapper"
