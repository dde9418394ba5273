#!/usr/bin/env bash
# Look at the HTML report as a person would: build the test dataset of
# tests/test_reports.py (a week of calls at two sites), render
# `followup report --format html --by site` and screenshot it in headless Chromium.
#
#   scripts/render_report_png.sh [OUT.png] [zh_CN|en]
#   e.g. scripts/render_report_png.sh /tmp/report.png en
#
# Then open the PNG and check: the three charts (follow-up rate by site, satisfaction
# by dimension, six-period trend) have bars and lines where the figures say so,
# labels are legible, CJK text shows as characters (not boxes), the lists and the
# definitions footer are there, and every phone number is masked.
#
# Needs (Debian): apt-get install -y chromium fonts-noto-cjk
# The CJK font is only for this screenshot: the page names system fonts and
# downloads nothing (no network, no CDN, no script).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/report.png}"
locale="${2:-zh_CN}"
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "headless Chromium not found: apt-get install -y chromium fonts-noto-cjk" >&2
  exit 2
fi
REPORT_PNG="$(realpath -m "$out")" REPORT_LOCALE="$locale" \
  .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_reports.py -k headless_chromium
echo "wrote $out (and the page beside it: ${out%.png}.html)"
