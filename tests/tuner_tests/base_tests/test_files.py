"""Files the commands write: checked before the work, written whole or not at all."""

from __future__ import annotations

import pytest

from tuner.base.errors import UserError
from tuner.base.files import check_writable, write_atomic


def test_a_directory_or_a_file_in_place_of_a_folder_is_refused_before_the_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"expected a file to write, but got .*, a directory"):
        check_writable(tmp_path)
    with pytest.raises(UserError, match="is not a folder"):
        check_writable(tmp_path / "file" / "deeper" / "out.yaml")
    assert check_writable(tmp_path / "new" / "out.yaml") == tmp_path / "new" / "out.yaml"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_tmp(tmp_path):
    out = tmp_path / "out.yaml"
    write_atomic(out, "old\n")
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(UserError, match=r"expected a file that can be written.*nothing was"):
        write_atomic(tmp_path / "dir.yaml", "new\n")  # os.replace onto a directory fails
    with pytest.raises(UserError, match="expected a file that can be written"):
        write_atomic(tmp_path / "out.yaml" / "below.yaml", "new\n")  # a file as a folder
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.yaml", "out.yaml"]
    write_atomic(out, "new\n")
    assert out.read_text() == "new\n" and (out.stat().st_mode & 0o777) != 0o600
