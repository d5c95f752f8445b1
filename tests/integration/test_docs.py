"""The documentation stays true to the tree: links resolve, commands name
programs where the README's build puts them, the reload examples signal the
server by its pid file, and nothing points at a contract document that is
not in the repository."""

import os
import re
import unittest

from harness import SOURCE_DIR

LINK_RE = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE_RE = re.compile(r"^```")


def doc_files():
    files = [os.path.join(SOURCE_DIR, "README.md")]
    docs = os.path.join(SOURCE_DIR, "docs")
    files += sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
    return files


def anchors(path):
    """GitHub-style anchors of the headings of a Markdown file."""
    out = set()
    with open(path) as f:
        for line in f:
            m = re.match(r"^#+\s+(.*)$", line)
            if m:
                text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
                out.add(text.replace(" ", "-"))
    return out


def code_lines(path):
    """(line number, text) of every line inside a fenced code block that
    holds commands (no language, sh, bash, console; not text or json)."""
    inside = False
    commands = False
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if FENCE_RE.match(line.strip()):
                inside = not inside
                commands = inside and line.strip()[3:] in ("", "sh", "bash", "console")
                continue
            if inside and commands:
                yield n, line.rstrip("\n")


class DocsTest(unittest.TestCase):

    def test_relative_links_and_anchors_resolve(self):
        for path in doc_files():
            with open(path) as f:
                text = f.read()
            for target in LINK_RE.findall(text):
                if re.match(r"^[a-z]+:", target):
                    continue  # http:, https:, mailto:
                file_part, _, anchor = target.partition("#")
                dest = path if file_part == "" else os.path.normpath(
                    os.path.join(os.path.dirname(path), file_part))
                with self.subTest(doc=os.path.relpath(path, SOURCE_DIR), link=target):
                    self.assertTrue(os.path.exists(dest), "%s does not exist" % dest)
                    if anchor and dest.endswith(".md"):
                        self.assertIn(anchor, anchors(dest))

    def test_no_reference_to_a_contract_outside_the_tree(self):
        paths = doc_files() + [os.path.join(SOURCE_DIR, "conf", f)
                               for f in os.listdir(os.path.join(SOURCE_DIR, "conf"))]
        for path in paths:
            with open(path) as f:
                for n, line in enumerate(f, 1):
                    with self.subTest(doc=os.path.relpath(path, SOURCE_DIR), line=n):
                        self.assertNotRegex(line, r"\bSPEC\b")

    def test_commands_name_the_built_programs(self):
        # After the README's build the tools are in build/, not on PATH.
        for path in doc_files():
            for n, line in code_lines(path):
                with self.subTest(doc=os.path.relpath(path, SOURCE_DIR), line=n):
                    self.assertNotRegex(line, r"^\s*(\$ )?(repod|repoctl|repod-warmup) ",
                                        "write build/<program>")

    def test_reload_examples_signal_the_pid_file(self):
        for path in doc_files():
            for n, line in code_lines(path):
                with self.subTest(doc=os.path.relpath(path, SOURCE_DIR), line=n):
                    self.assertNotIn("pkill", line)
                    self.assertNotIn("killall", line)


if __name__ == "__main__":
    unittest.main()
