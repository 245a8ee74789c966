"""What both command lines and every package share: the user-error base and its CLI wrapper.

``toreid`` is the distribution's core: it imports nothing of ``ogor``, ``models`` or
``benchmark``, so each of them can depend on it without depending on each other.
"""
