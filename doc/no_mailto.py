"""A docutils transform: metric names such as ``R@10`` stay text.

docutils turns any ``word@word`` in running text into a ``mailto:`` link
(``R@10``, ``skew@10``, ``MeanSim@10``). This documentation has no e-mail
addresses, so every such standalone e-mail reference becomes its text.
"""

from docutils import nodes
from docutils.transforms import Transform


class NoMailto(Transform):
    """Replace ``mailto:`` references recognised in plain text by their text."""

    default_priority = 10  # before Sphinx resolves references

    def apply(self):
        for ref in list(self.document.findall(nodes.reference)):
            if ref.get("refuri", "").startswith("mailto:"):
                ref.replace_self(nodes.Text(ref.astext()))
