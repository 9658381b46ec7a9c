# Serving parity (issue 20, check 4). Included by the main Makefile; `make test` depends on the venv.
#
#   make tf-serving-venv   .venv-tf219: tensorflow-cpu of the serving DLC (UserTowerTfVersion) + numpy, nothing else
#
# The SageMaker endpoint serves the user tower with TF Serving 2.19 (no 2.20 DLC exists); the dev venv trains
# and exports with TF 2.20. tests/aws/test_tf_serving_parity.py loads the exported SavedModel in this venv and
# feeds it the Lambda's exact JSON, converted the way TF Serving's REST predict API converts "instances".

PYTHON ?= python3
TF_SERVING_VENV ?= .venv-tf219

$(TF_SERVING_VENV)/.installed: requirements/tf-serving-parity.txt
	$(PYTHON) -m venv $(TF_SERVING_VENV)
	$(TF_SERVING_VENV)/bin/pip install -q --upgrade pip
	$(TF_SERVING_VENV)/bin/pip install -q -r requirements/tf-serving-parity.txt
	touch $@

.PHONY: tf-serving-venv
tf-serving-venv: $(TF_SERVING_VENV)/.installed  ## venv with the serving container's TensorFlow (serving-parity tests)

# The serving TF's op registry, which package_model_tar checks every exported graph against (a test keeps it true).
TF_SERVING_VERSION ?= 2.19
.PHONY: tf-serving-ops
tf-serving-ops: $(TF_SERVING_VENV)/.installed  ## regenerate training/.../tf_serving_ops/<version>.txt from the serving TF
	$(TF_SERVING_VENV)/bin/python tests/aws/tf_serving_predict.py ops \
		training/tastebud_training/two_tower/tf_serving_ops/$(TF_SERVING_VERSION).txt
