"""Build the optional C accelerator; everything else is in pyproject.toml.

The extension is optional: without a C compiler (or with ``EXECLOG_NO_EXTENSIONS=1``) the
package installs as pure Python and works the same, only slower per traced call.
"""

import os
import sysconfig

from setuptools import Extension, setup

extensions = []
# Not on free-threaded CPython: the extension relies on the GIL (execlog/_native.py skips it).
if os.environ.get("EXECLOG_NO_EXTENSIONS", "") in ("", "0") and not sysconfig.get_config_var(
    "Py_GIL_DISABLED"
):
    extensions.append(
        Extension(
            "execlog._speedups",
            ["src/execlog/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2"] if os.name == "posix" else [],
        )
    )

setup(ext_modules=extensions)
