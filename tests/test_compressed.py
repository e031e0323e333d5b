"""Tests for cputime.inputs.compressed: one incremental decoder for catalog files and uploads."""

import gzip
import io

import pytest

from cputime.errors import InputError
from cputime.inputs.compressed import DecompressedTooLarge, TextDecoder, decompressed_blocks

TEXT = b"".join(b"object %d 1.0 2.0 22 sed.txt 0 0 0 0 0 0 point none CCM 0.1 3.1\n" % i
                for i in range(2000))


def _decode(data: bytes, step: int, **options) -> bytes:
    decoder = TextDecoder("in", **options)
    pieces = [out for i in range(0, len(data), step) for out in decoder.feed(data[i:i + step])]
    return b"".join([*pieces, *decoder.close()])


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_any_feeding_gives_the_text(step):
    assert _decode(TEXT, step) == TEXT
    assert _decode(gzip.compress(TEXT), step) == TEXT


def test_concatenated_members_padding_and_bom():
    data = gzip.compress(b"\xef\xbb\xbf" + TEXT[:500]) + gzip.compress(TEXT[500:]) + b"\0" * 512
    assert _decode(data, 100) == TEXT
    assert _decode(b"\xef\xbb\xbf" + TEXT, 2) == TEXT
    assert _decode(b"a", 1) == b"a"  # shorter than the gzip magic number
    assert _decode(b"", 1) == b""


def test_nested_truncated_and_corrupt_gzip_are_refused():
    with pytest.raises(InputError, match="^in: gzip data inside gzip data"):
        _decode(gzip.compress(gzip.compress(TEXT)), 3)
    with pytest.raises(InputError, match="^in: gzip data is truncated"):
        _decode(gzip.compress(TEXT)[:-20], 50)
    with pytest.raises(InputError, match="^in: corrupt gzip data"):
        _decode(b"\x1f\x8b not gzip at all", 50)


def test_the_limit_stops_a_bomb_early():
    bomb = gzip.compress(b"#" * (64 << 20))  # 64 MB of text in 64 KB
    decoder = TextDecoder("in", max_bytes=1 << 20, limit_name="max_catalog_bytes",
                          piece_bytes=1 << 16)
    produced = 0
    with pytest.raises(DecompressedTooLarge, match=r"limit of 1048576 bytes \(max_catalog_bytes"):
        for piece in decoder.feed(bomb):
            produced += len(piece)
    assert produced <= 1 << 20  # never unpacked whole
    assert _decode(gzip.compress(TEXT), 1000, max_bytes=len(TEXT)) == TEXT  # at the limit: fine


def test_file_reader_yields_the_same_text():
    assert b"".join(decompressed_blocks(io.BytesIO(gzip.compress(TEXT)), "f")) == TEXT
    assert b"".join(decompressed_blocks(io.BytesIO(TEXT), "f", piece_bytes=10)) == TEXT
