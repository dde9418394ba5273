#!/usr/bin/env bash
# Screenshots of what a zh_CN coordinator and manager read, at 80 columns:
# `followup worklist` and `followup report month` on the demo chain, captured from a
# real terminal (tmux capture-pane, 80 columns wide) into docs/screenshots/*.txt, and,
# when headless Chromium and a CJK monospace font are installed, rendered to PNG
# beside them (the PNG is drawn from the text capture, nothing else).
#
#   scripts/screenshots.sh [NOW]      # NOW: the demo's clock, default 2026-12-07T09:30+08:00
#
# Needs: tmux; for the PNGs (optional, Debian): apt-get install -y chromium fonts-noto-cjk
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
now="${1:-2026-12-07T09:30+08:00}"
out="$root/docs/screenshots"
work="$(mktemp -d)"
trap 'tmux kill-session -t followup-shot 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$out"
cp -r "$root/config" "$work/config"
(cd "$work" && FOLLOWUP_NOW="$now" "$root/.venv/bin/followup" demo >/dev/null 2>&1)

shot() {  # NAME COMMAND: run COMMAND in an 80-column tmux pane, save what the pane shows
  local name="$1" command="$2"
  tmux kill-session -t followup-shot 2>/dev/null || true
  tmux new-session -d -s followup-shot -x 80 -y 60 -c "$work" \
    "env -i HOME=$work TERM=xterm-256color LANG=C.UTF-8 FOLLOWUP_NOW=$now PATH=$root/.venv/bin:/usr/bin:/bin PS1='$ ' bash --norc --noprofile"
  tmux set-option -t followup-shot history-limit 5000 >/dev/null
  sleep 0.5
  tmux send-keys -t followup-shot "$command; echo __END__" Enter
  for _ in $(seq 1 60); do
    sleep 0.5
    tmux capture-pane -t followup-shot -p -S - | grep -q '^__END__' && break
  done
  tmux capture-pane -t followup-shot -p -S - -E - \
    | sed '/^__END__$/,$d' | sed "1s/; echo __END__\$//" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > "$out/$name.txt"
  tmux kill-session -t followup-shot
  echo "wrote docs/screenshots/$name.txt"
}

shot worklist-zh_CN-80col "followup worklist"
shot report-month-zh_CN-80col "followup report month"

browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ] || ! fc-list ':lang=zh' family | grep -qi 'mono'; then
  echo "no headless Chromium or CJK monospace font: text captures only" >&2
  exit 0
fi
for name in worklist-zh_CN-80col report-month-zh_CN-80col; do
  lines=$(wc -l < "$out/$name.txt")
  "$root/.venv/bin/python" - "$out/$name.txt" "$work/$name.html" <<'EOF'
import html, sys
text = open(sys.argv[1], encoding="utf-8").read()
page = ("<!doctype html><meta charset=utf-8><style>body{margin:0;background:#1e1e1e}"
        "pre{margin:0;padding:12px;color:#e6e6e6;font:15px/1.35 'Noto Sans Mono CJK SC',monospace}</style>"
        f"<pre>{html.escape(text)}</pre>")
open(sys.argv[2], "w", encoding="utf-8").write(page)
EOF
  height=$(( lines * 21 + 30 ))
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=760,"$height" \
    --screenshot="$out/$name.png" "file://$work/$name.html" >/dev/null 2>&1
  echo "wrote docs/screenshots/$name.png"
done
