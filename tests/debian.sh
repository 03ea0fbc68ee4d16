# Sourced by tests/run.sh and lessons/run.sh: `debian_packages PKG...` installs the Debian packages
# named (a package counts as there when its command is, or for python3-venv when the system Python has
# venv) with apt-get when root; otherwise it says how.
debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    case $pkg in
      python3-venv) /usr/bin/python3 -m venv --help >/dev/null 2>&1 || missing+=("$pkg") ;;
      *) command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    printf '\n== %s\n' "installing ${missing[*]} (Debian)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "could not install ${missing[*]}"
  else
    echo "note: ${missing[*]} not found and not root: install them (sudo apt-get install ${missing[*]})"
  fi
}
