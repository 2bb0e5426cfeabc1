"""`python -m train.bench` runs end to end and prints its table (numbers are not asserted)."""

from helpers import run_cli


def test_bench_prints_a_table_on_the_tiny_preset():
    result = run_cli(["train.bench", "gan_superres", "--preset", "tiny", "--steps", "2",
                      "--precisions", "float32,mixed_bfloat16"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Peak GFLOP/s here: float32 matmul" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| precision | steps/s | images/s | input wait | GFLOP/s")
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| float32", "| mixed_bfloat16"]
    assert "GFLOP per step" in result.stdout


def test_bench_times_the_keras_io_peer_in_the_same_run():
    result = run_cli(["train.bench", "vae", "--preset", "tiny", "--steps", "2", "--precisions", "float32",
                      "--keras-peer"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    row = next(line for line in result.stdout.splitlines() if line.startswith("| float32"))
    assert "keras.io-style peer images/s" in result.stdout and row.rstrip().endswith("x |"), result.stdout
