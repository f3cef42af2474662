"""pyarrow's S3FileSystem (the AWS C++ SDK) against a running gateway.

A partitioned Parquet dataset is written and read back, a large stream goes up in
parts, and files are copied, moved and deleted through the filesystem interface.
"""

from __future__ import annotations

import pytest

from tests.clients.conftest import CLIENT_READ_TIMEOUT, MULTIPART_SIZE, MiB, payload
from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET

try:
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs
except ImportError:  # a missing client fails every test, never skips it
    pa = None


def s3_filesystem(gateway, **options):
    if pa is None:
        pytest.fail("pyarrow is not installed: pip install -e '.[test]'")
    return pafs.S3FileSystem(
        access_key=TEST_ACCESS_KEY,
        secret_key=TEST_SECRET,
        endpoint_override=gateway.endpoint,
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
        allow_bucket_deletion=True,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
        connect_timeout=10,
        request_timeout=CLIENT_READ_TIMEOUT,
        **options,
    )


@pytest.fixture
def arrow_fs(gateway):
    return s3_filesystem(gateway)


def sample_table(rows: int = 6000):
    years = [2021 + i % 3 for i in range(rows)]
    countries = [("de", "fr", "jp", "us")[i % 4] for i in range(rows)]
    return pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "year": pa.array(years, pa.int32()),
        "country": pa.array(countries, pa.string()),
        "value": pa.array([i * 0.5 for i in range(rows)], pa.float64()),
        "label": pa.array([f"row-{i:06d}" for i in range(rows)], pa.string()),
    })


def files_under(arrow_fs, path: str) -> list[str]:
    infos = arrow_fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)


def normalized(table, like):
    """``table`` in the column order and types of ``like``, rows by id (partitions reorder)."""
    return table.select(like.column_names).cast(like.schema).sort_by("id")


# By default every file goes up as a multipart upload; with delayed open a small file
# is one PutObject (aws-chunked, unsigned payload, CRC64NVME trailer).
@pytest.mark.parametrize("delayed_open", [False, True], ids=["multipart-files", "put-files"])
def test_pyarrow_partitioned_parquet_dataset(gateway, bucket_name, delayed_open):
    arrow_fs = s3_filesystem(gateway, allow_delayed_open=delayed_open)
    arrow_fs.create_dir(bucket_name)  # CreateBucket through the C++ SDK
    table = sample_table()
    root = f"{bucket_name}/sales"
    pq.write_to_dataset(table, root_path=root, partition_cols=["year", "country"],
                        filesystem=arrow_fs)
    files = files_under(arrow_fs, root)
    assert len(files) == 12  # 3 years x 4 countries, one file each
    assert all(f.endswith(".parquet") for f in files)
    top = arrow_fs.get_file_info(pafs.FileSelector(root))  # one delimiter level
    assert sorted(i.base_name for i in top) == ["year=2021", "year=2022", "year=2023"]
    assert all(i.type == pafs.FileType.Directory for i in top)

    back = pq.read_table(root, filesystem=arrow_fs, partitioning="hive")
    assert normalized(back, table).equals(table)
    only = pads.dataset(root, filesystem=arrow_fs, partitioning="hive").to_table(
        filter=(pads.field("year") == 2022) & (pads.field("country") == "jp"))
    expected = table.filter((pa.compute.field("year") == 2022)
                            & (pa.compute.field("country") == "jp"))
    assert normalized(only, table).equals(expected.sort_by("id"))

    # The same data through pyarrow.dataset's writer, as one more layout.
    pads.write_dataset(table, f"{bucket_name}/by-year", format="parquet",
                       partitioning=["year"], partitioning_flavor="hive", filesystem=arrow_fs)
    again = pads.dataset(f"{bucket_name}/by-year", filesystem=arrow_fs,
                         partitioning="hive").to_table()
    assert normalized(again, table).equals(table)

    arrow_fs.delete_dir(root)
    left = files_under(arrow_fs, bucket_name)
    assert left and all(f.startswith(f"{bucket_name}/by-year/year=") for f in left), left
    arrow_fs.delete_dir_contents(bucket_name)
    arrow_fs.delete_dir(bucket_name)  # DeleteBucket
    assert arrow_fs.get_file_info(bucket_name).type == pafs.FileType.NotFound


def test_pyarrow_multipart_stream(arrow_fs, made_bucket, boto):
    data = payload(MULTIPART_SIZE, "pyarrow-multipart")
    path = f"{made_bucket}/big/stream.bin"
    with arrow_fs.open_output_stream(path) as out:  # parts go up as the buffer fills
        for off in range(0, len(data), MiB):
            out.write(data[off:off + MiB])
    head = boto.head_object(Bucket=made_bucket, Key="big/stream.bin")
    assert head["ContentLength"] == len(data)
    assert "-" in head["ETag"], head["ETag"]  # a multipart ETag
    with arrow_fs.open_input_file(path) as f:
        assert f.size() == len(data)
        assert f.read_at(4096, 10 * MiB - 2048) == data[10 * MiB - 2048:10 * MiB + 2048]
        assert f.readall() == data
    with arrow_fs.open_input_stream(path) as f:
        assert f.read() == data


def test_pyarrow_copy_move_delete(arrow_fs, made_bucket, boto):
    data = payload(300 * 1024, "pyarrow-copy")
    boto.put_object(Bucket=made_bucket, Key="src/one.bin", Body=data)
    arrow_fs.copy_file(f"{made_bucket}/src/one.bin", f"{made_bucket}/dst/one.bin")
    arrow_fs.move(f"{made_bucket}/dst/one.bin", f"{made_bucket}/moved/one.bin")
    assert files_under(arrow_fs, made_bucket) == [
        f"{made_bucket}/moved/one.bin", f"{made_bucket}/src/one.bin"]
    with arrow_fs.open_input_stream(f"{made_bucket}/moved/one.bin") as f:
        assert f.read() == data
    arrow_fs.delete_file(f"{made_bucket}/src/one.bin")
    assert files_under(arrow_fs, made_bucket) == [f"{made_bucket}/moved/one.bin"]
