#!/usr/bin/env python3
"""Man pages for wec, generated from the CLI itself: `wec --help` and `wec <cmd> [<sub>] --help`.

Writes OUTDIR/wec.1.gz and one OUTDIR/wec-<cmd>.1.gz per subcommand (gzip -9n: no name, no time,
so that the package is reproducible). The help text is CLI11's: a description line, "Usage:",
sections ("Positionals:", "Options:", "Subcommands:") of entries whose description starts at
column 30 (or on the next line when the name is longer), then a free-form footer (examples).

    scripts/gen-man.py build/tools/wec/wec build/man
"""

import gzip
import os
import re
import subprocess
import sys

SECTIONS = ("Positionals:", "Options:", "Subcommands:")
DESC_COLUMN = 30

# What --help cannot say: where the packaged service keeps things, its signals and environment.
EXTRA = {
    "wec": [
        (
            "EXIT STATUS",
            [
                ("0", "the command did everything it was asked"),
                ("1", "finished, but part of the input could not be processed"),
                ("2", "usage error, invalid input or configuration"),
                ("3", "runtime failure (I/O, network, store)"),
            ],
        ),
    ],
    "serve": [
        (
            "SIGNALS",
            [
                ("SIGTERM, SIGINT", "stop accepting, finish the requests in flight (up to "
                 "drain_timeout), flush heartbeats, exit 0"),
                ("SIGHUP", "re-open the output files (logrotate) and reload the TLS certificates, "
                 "keys and CRLs; `systemctl reload wec` sends it"),
            ],
        ),
        (
            "ENVIRONMENT",
            [
                ("NOTIFY_SOCKET", "set by systemd (Type=notify): READY=1 once listening, "
                 "RELOADING=1 and READY=1 around SIGHUP, STOPPING=1 on SIGTERM"),
                ("WATCHDOG_USEC, WATCHDOG_PID", "set by systemd (WatchdogSec=): WATCHDOG=1 at half "
                 "of WATCHDOG_USEC"),
                ("KRB5_KTNAME, KRB5RCACHEDIR", "MIT Kerberos settings, when the configuration "
                 "does not name a keytab or replay cache"),
            ],
        ),
        (
            "FILES",
            [
                ("/etc/wec/wec.toml", "configuration of the packaged service (a conffile)"),
                ("/etc/wec/wec.keytab", "the collector's Kerberos keys (HTTP/ and HOST/ "
                 "principals), readable by the wec group"),
                ("/var/lib/wec/wec.db", "the SQLite state store: subscriptions, bookmarks, "
                 "heartbeats"),
                ("/var/log/wec/", "event files of the files outputs, rotated by "
                 "/etc/logrotate.d/wec"),
                ("/lib/systemd/system/wec.service", "the systemd unit"),
            ],
        ),
    ],
}


def run_help(wec, args):
    out = subprocess.run([wec, *args, "--help"], check=True, capture_output=True, text=True)
    return out.stdout


def parse_help(text):
    """Returns {description, usage, sections: {name: [(entry, desc)]}, footer}."""
    lines = text.rstrip("\n").split("\n")
    result = {"description": "", "usage": "", "sections": {}, "footer": []}
    i = 0
    if lines and not lines[0].startswith("Usage:"):
        result["description"] = lines[0].strip()
        i = 1
    while i < len(lines) and not lines[i].startswith("Usage:"):
        i += 1
    if i < len(lines):
        usage = lines[i][len("Usage:"):].strip()
        # argv[0] as invoked (a build path) -> "wec"
        result["usage"] = re.sub(r"^\S+", "wec", usage)
        i += 1
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line in SECTIONS:
            entries = []
            i += 1
            while i < len(lines) and lines[i].startswith("  "):
                head = lines[i]
                nxt = lines[i + 1] if i + 1 < len(lines) else ""
                if nxt.startswith(" " * DESC_COLUMN) and nxt.strip():
                    entries.append((head.strip(), nxt.strip()))
                    i += 2
                else:
                    entries.append((head[:DESC_COLUMN].strip(), head[DESC_COLUMN:].strip()))
                    i += 1
            result["sections"][line[:-1]] = entries
            continue
        result["footer"] = lines[i:]
        break
    return result


def esc(text):
    """Escapes running text for roff."""
    text = text.replace("\\", "\\e")
    text = text.replace("-", "\\-")
    return text


def line_safe(text):
    """A roff input line must not start with '.' or "'" (they are requests)."""
    return "\\&" + text if text[:1] in (".", "'") else text


def option_name(entry):
    """Bold option names and the rest (types, defaults) as it is: `-c,--config TEXT`."""
    m = re.match(r"^(\S+)(.*)$", entry)
    name, rest = m.group(1), m.group(2)
    if name.startswith("-"):
        return "\\fB" + esc(name) + "\\fR" + esc(rest)
    return "\\fI" + esc(name) + "\\fR" + esc(rest)


def render_entries(out, entries):
    for entry, desc in entries:
        if entry.startswith("-h,--help"):
            continue
        out.append(".TP")
        out.append(line_safe(option_name(entry)))
        out.append(line_safe(esc(desc)))


def render_footer(out, footer, heading):
    body = list(footer)
    while body and not body[-1].strip():
        body.pop()
    if not body:
        return
    out.append(".SH " + heading)
    out.append(".nf")
    for l in body:
        out.append(line_safe(esc(l)) if l.strip() else "")
    out.append(".fi")


def footer_heading(footer):
    text = "\n".join(footer)
    return "EXAMPLES" if re.search(r"Example|Typical use", text) else "NOTES"


def render_extra(out, name):
    for heading, items in EXTRA.get(name, []):
        out.append(".SH " + heading)
        for term, desc in items:
            out.append(".TP")
            out.append(line_safe("\\fB" + esc(term) + "\\fR"))
            out.append(line_safe(esc(desc)))


def synopsis_line(usage):
    """`wec sub apply [OPTIONS] files...`: the command words in bold, the arguments as they are."""
    words = usage.split(" ")
    n = 1
    while n < len(words) and re.fullmatch(r"[a-z][a-z0-9-]*", words[n]):
        n += 1
    command = " ".join(words[:n])
    rest = " ".join(words[n:])
    return line_safe("\\fB" + esc(command) + "\\fR" + (" " + esc(rest) if rest else ""))


def page(title, version, name_line, synopsis, description):
    return [
        '.\\" Generated by scripts/gen-man.py from `wec --help`; do not edit.',
        '.TH %s 1 "" "wec %s" "wec manual"' % (title.upper(), version),
        ".SH NAME",
        name_line,
        ".SH SYNOPSIS",
        synopsis_line(synopsis),
        ".SH DESCRIPTION",
        line_safe(esc(description)),
    ]


def main_page(wec, version, top, commands):
    out = page("wec", version, "wec \\- " + esc(top["description"].split(" - ", 1)[-1]),
               "wec [OPTIONS] COMMAND ...", top["description"].split(" - ", 1)[-1] + ".")
    out.append(".SH OPTIONS")
    render_entries(out, top["sections"].get("Options", []))
    out.append(".SH COMMANDS")
    for cmd, desc in commands:
        out.append(".TP")
        out.append("\\fBwec\\-%s\\fR(1)" % esc(cmd))
        out.append(line_safe(esc(desc)))
    render_extra(out, "wec")
    out.append(".SH SEE ALSO")
    out.append(", ".join("\\fBwec\\-%s\\fR(1)" % esc(c) for c, _ in commands) + ",")
    out.append("/usr/share/doc/wec/ (the documentation pages, Markdown)")
    return out


def command_page(wec, version, cmd, desc):
    h = parse_help(run_help(wec, [cmd]))
    out = page("wec-" + cmd, version, "wec\\-%s \\- %s" % (esc(cmd), esc(desc)), h["usage"],
               h["description"] + ".")
    for section, title in (("Positionals", "ARGUMENTS"), ("Options", "OPTIONS")):
        entries = [e for e in h["sections"].get(section, []) if not e[0].startswith("-h,")]
        if entries:
            out.append(".SH " + title)
            render_entries(out, entries)
    subs = h["sections"].get("Subcommands", [])
    if subs:
        out.append(".SH COMMANDS")
        for sub, sub_desc in subs:
            sh = parse_help(run_help(wec, [cmd, sub]))
            out.append(".SS %s" % esc("wec %s %s" % (cmd, sub)))
            out.append(line_safe(esc(sub_desc) + "."))
            out.append(".PP")
            out.append(synopsis_line(sh["usage"]))
            for section in ("Positionals", "Options"):
                render_entries(out, sh["sections"].get(section, []))
            # A subcommand's footer usually repeats its parent's; show it only when it differs.
            if sh["footer"] and sh["footer"] != h["footer"]:
                out.append(".PP")
                out.append(".nf")
                out.extend(line_safe(esc(l)) if l.strip() else "" for l in sh["footer"])
                out.append(".fi")
    render_footer(out, h["footer"], footer_heading(h["footer"]))
    render_extra(out, cmd)
    out.append(".SH SEE ALSO")
    doc = {"sub": "subscriptions.md", "serve": "serve.md, configuration.md, install.md"}.get(
        cmd, cmd + ".md")
    out.append("\\fBwec\\fR(1), /usr/share/doc/wec/ (%s when present)" % esc(doc))
    return out


def write(outdir, name, lines):
    data = ("\n".join(lines) + "\n").encode()
    path = os.path.join(outdir, name + ".1.gz")
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(data)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen-man.py WEC_BINARY OUTDIR")
    wec, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    version = subprocess.run([wec, "--version"], check=True, capture_output=True,
                             text=True).stdout.split()[-1]
    top = parse_help(run_help(wec, []))
    commands = top["sections"].get("Subcommands", [])
    if not commands:
        sys.exit("gen-man.py: no subcommands in `%s --help`" % wec)
    write(outdir, "wec", main_page(wec, version, top, commands))
    for cmd, desc in commands:
        write(outdir, "wec-" + cmd, command_page(wec, version, cmd, desc))


if __name__ == "__main__":
    main()
