"""The framework-free task spec: constants, profiles, overrides, errors."""
import pytest

from harness.matrix.tasks import SpecError, coerce_override, make_spec


def test_param_counts_are_the_products():
    assert make_spec("mnist_mlp").param_count == 235_146
    cnn = make_spec("mnist_cnn")
    assert cnn.flat_size == 1600
    assert cnn.param_count == 34_826


def test_training_flops_per_step_by_hand():
    # MLP, per sample: forward 784*256 + 256*128 + 128*10 = 234,752 multiply-adds; backward twice
    # that, less the first layer's input gradient (200,704): 503,552 MACs, x2 FLOPs, x128 samples
    assert make_spec("mnist_mlp").train_flops_per_step == 2 * 128 * (3 * 234_752 - 200_704) == 128_909_312
    # CNN: conv1 26*26 outputs x 9*1*32, conv2 11*11 x 9*32*64, dense 1600*10
    conv1, conv2, dense = 26 * 26 * 9 * 32, 11 * 11 * 9 * 32 * 64, 1600 * 10
    assert make_spec("mnist_cnn").train_flops_per_step == 2 * 128 * (3 * (conv1 + conv2 + dense) - conv1)
    assert make_spec("mnist_mlp", batch_size=32).train_flops_per_step == 128_909_312 // 4


def test_full_profile_trains_to_target_and_set_can_turn_it_off():
    mlp, cnn = make_spec("mnist_mlp", "full"), make_spec("mnist_cnn", "full")
    assert (mlp.stop_at_target, mlp.epochs, mlp.target_accuracy) == (True, 10, 0.975)
    assert (cnn.stop_at_target, cnn.epochs, cnn.target_accuracy) == (True, 4, 0.985)
    assert not make_spec("mnist_mlp", "smoke").stop_at_target
    assert coerce_override("mnist_mlp", "stop_at_target", "false") is False
    assert coerce_override("mnist_mlp", "target_accuracy", "none") is None


def test_x2_exact_trajectory():
    spec = make_spec("x2_descent")
    traj = spec.exact_trajectory()
    assert len(traj) == 21 and traj[0] == 10.0
    assert traj[20] == pytest.approx(10 * 0.8**20, rel=1e-12)


def test_profiles_shape_the_work():
    assert make_spec("mnist_mlp", "smoke").train_subset == 2048
    full = make_spec("mnist_mlp", "full")
    assert full.train_subset is None and full.target_accuracy == 0.975
    assert make_spec("mnist_cnn", "full").target_accuracy == 0.985
    assert make_spec("mnist_mlp", "full", dataset="fashion-mnist").target_accuracy is None


def test_linreg_spec_per_dataset_and_mode():
    spec = make_spec("linear_regression", "quick", dataset="california", mode="minibatch")
    assert spec.d == 8 and spec.batch_size == 32
    assert make_spec("linear_regression", "quick", dataset="diabetes").d == 10
    assert make_spec("linear_regression", "quick", mode="sgd").batch_size == 1


def test_shared_init_equalises_adam_epsilon():
    assert make_spec("mnist_mlp").adam_eps is None
    assert make_spec("mnist_mlp", init="shared").adam_eps == 1e-8


@pytest.mark.parametrize("kwargs, message", [
    (dict(task="nope"), "unknown task"),
    (dict(task="mnist_mlp", profile="huge"), "unknown profile"),
    (dict(task="mnist_mlp", dataset="cifar"), "unknown dataset"),
    (dict(task="linear_regression", mode="adam"), "unknown mode"),
    (dict(task="mnist_mlp", batchsize=3), "has no setting"),
])
def test_bad_input_is_a_spec_error(kwargs, message):
    with pytest.raises(SpecError, match=message):
        make_spec(**kwargs)


def test_overrides_are_typed():
    assert coerce_override("mnist_mlp", "batch_size", "512") == 512
    assert coerce_override("mnist_mlp", "lr", "0.01") == 0.01
    with pytest.raises(SpecError, match="bad value"):
        coerce_override("mnist_mlp", "lr", "fast")
