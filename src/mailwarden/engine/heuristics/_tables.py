"""Extension tables shared by the name heuristics.

Used by ``_names`` and ``_check``: every extension is lower case, without the
dot.  The script table also fixes the set of ``Heuristics.Script.<EXT>`` names,
so :data:`HEURISTIC_NAMES` can list them all.

SECURITY: data only.
"""

from __future__ import annotations

#: native code that Windows runs or loads directly
EXECUTABLE_EXTENSIONS = frozenset({"exe", "dll", "sys", "drv", "ocx", "efi", "xll", "vxd", "ex_"})

#: interpreted code, installers, shortcuts and other files that run something
#: when opened (the types large mail providers refuse to deliver)
SCRIPT_EXTENSIONS = frozenset(
    {
        "ade",
        "adp",
        "application",
        "appref-ms",
        "appx",
        "appxbundle",
        "bat",
        "chm",
        "cmd",
        "com",
        "cpl",
        "diagcab",
        "gadget",
        "hta",
        "inf",
        "ins",
        "iqy",
        "isp",
        "jar",
        "jnlp",
        "js",
        "jse",
        "lnk",
        "mde",
        "msc",
        "msi",
        "msix",
        "msixbundle",
        "msp",
        "mst",
        "pif",
        "ps1",
        "psc1",
        "psd1",
        "psm1",
        "reg",
        "scf",
        "scr",
        "sct",
        "settingcontent-ms",
        "shb",
        "shs",
        "slk",
        "url",
        "vb",
        "vbe",
        "vbs",
        "ws",
        "wsc",
        "wsf",
        "wsh",
    }
)

#: mountable images: Windows opens them with a double click, and their
#: contents escape the "downloaded from the internet" mark
DISK_IMAGE_EXTENSIONS = frozenset({"iso", "img", "vhd", "vhdx", "dmg"})

#: everything a dangerous extension may hide behind
DANGEROUS_EXTENSIONS = EXECUTABLE_EXTENSIONS | SCRIPT_EXTENSIONS | DISK_IMAGE_EXTENSIONS

#: extensions a reader takes for documents, pictures, media or plain
#: archives: the decoys of a double extension, and the names that executable
#: content contradicts
DECOY_EXTENSIONS = frozenset(
    {
        "7z",
        "avi",
        "bmp",
        "csv",
        "doc",
        "docm",
        "docx",
        "eml",
        "gif",
        "gz",
        "heic",
        "htm",
        "html",
        "jpeg",
        "jpg",
        "json",
        "mkv",
        "mov",
        "mp3",
        "mp4",
        "msg",
        "odp",
        "ods",
        "odt",
        "pdf",
        "png",
        "ppt",
        "pptx",
        "rar",
        "rtf",
        "svg",
        "tar",
        "tif",
        "tiff",
        "txt",
        "wav",
        "webp",
        "wmv",
        "xls",
        "xlsm",
        "xlsx",
        "xml",
        "zip",
    }
)
