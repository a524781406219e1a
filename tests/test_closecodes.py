"""Every close code the server sends is in docs/protocol.md's table, and back."""

from videochat.closecodes import CloseCode
from videochat.devstack import BASE_DIR


def documented_codes() -> set[int]:
    doc = (BASE_DIR / "docs" / "protocol.md").read_text()
    section = doc.split("## Close codes\n")[1].split("\n## ")[0]
    return {
        int(line.split("|")[1])
        for line in section.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    }


def test_server_close_codes_are_the_documented_ones():
    ours = {v for k, v in vars(CloseCode).items() if k.isupper() and v >= 4000}
    documented = {code for code in documented_codes() if code >= 4000}
    assert ours == documented
