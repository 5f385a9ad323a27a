"""Named arrays in one file: what is written is read back, memory-mapped; damage is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rag.mapped_arrays import load_arrays, save_arrays

DTYPES = st.sampled_from([np.int32, np.int64, np.float32, np.float64, np.uint8, np.bool_])
ARRAYS = st.dictionaries(
    st.text("abcdefgh_", min_size=1, max_size=6),
    DTYPES.flatmap(lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=1, max_dims=2, min_side=0))),
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(arrays=ARRAYS)
def test_arrays_come_back_as_written(arrays, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("a") / "x.arrays"
    save_arrays(path, arrays)
    loaded = load_arrays(path)
    assert list(loaded) == list(arrays)
    for name, a in arrays.items():
        assert loaded[name].dtype == a.dtype and loaded[name].shape == a.shape
        np.testing.assert_array_equal(loaded[name], a)


def test_arrays_are_mapped_read_only_and_a_rewrite_leaves_open_maps_intact(tmp_path) -> None:
    path = tmp_path / "x.arrays"
    save_arrays(path, {"ids": np.arange(1000, dtype=np.int64)})
    first = load_arrays(path)["ids"]
    assert isinstance(first, np.memmap) and not first.flags.writeable
    save_arrays(path, {"ids": np.zeros(10, dtype=np.int64)})  # renamed over: the old map stays
    assert first[999] == 999 and len(load_arrays(path)["ids"]) == 10


def test_a_damaged_or_cut_file_is_refused(tmp_path) -> None:
    path = tmp_path / "x.arrays"
    save_arrays(path, {"tfs": np.ones(4096, dtype=np.float32)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut short"):
        load_arrays(path)
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match="not an arrays file"):
        load_arrays(path)
    path.write_bytes(data[:16] + (5).to_bytes(8, "little") + b"{oops")
    with pytest.raises(ValueError, match="damaged header"):
        load_arrays(path)
