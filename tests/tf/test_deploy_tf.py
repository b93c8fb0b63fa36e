import pytest
from deploy_family import check_deploy


@pytest.mark.parametrize("framework, variant, exporter", [
    ("tf1", "raw", "tf.compat.v1.saved_model.simple_save"), ("tf2", "function", "tf.saved_model.save"),
    ("keras-tensorflow", "sequential", "keras model.export(format='tf_saved_model')")])
def test_saved_model_round_trip(run_cells, tmp_path, framework, variant, exporter):
    check_deploy(run_cells, tmp_path, framework, variant, exporter, "deploy")  # a SavedModel is a folder
