"""Gradient descent on f(x) = x² in TF2: eager by default, a GradientTape records f, a tf.Variable updates in place."""
import tensorflow as tf

VARIANTS = {
    "tape": "GradientTape + x.assign_sub(lr * grad), eager",
    "function": "the same step compiled into a graph with @tf.function",
    "optimizer": "tf.keras.optimizers.SGD(lr).apply_gradients does the update",
}


# %% model
def f(x):
    return x**2  # concept: loss


# %% step
def train_step(x, lr, optimizer=None):
    with tf.GradientTape() as tape:  # records the ops on the trainable variables it sees  # concept: gradient
        loss = f(x)
    # concept-absent: zero-grad: a tape is used once, so there is nothing to reset
    grad = tape.gradient(loss, x)  # 2x  # concept: gradient
    if optimizer is None:
        x.assign_sub(lr * grad)  # variables are updated in place, outside any tape  # concept: step
    else:
        optimizer.apply_gradients([(grad, x)])  # the same x -= lr * grad  # concept: step


# %% train
def train(spec, rec):
    x = tf.Variable(spec.x0, dtype=tf.float32, name="x")  # concept: params
    optimizer = tf.keras.optimizers.SGD(spec.lr) if spec.variant == "optimizer" else None  # concept: optimizer
    # tf.function traces train_step into a graph on its first call
    step = tf.function(train_step) if spec.variant == "function" else train_step  # concept: jit
    trajectory = [float(x.numpy())]
    for _ in range(spec.steps):
        step(x, spec.lr, optimizer)
        trajectory.append(float(x.numpy()))
        rec.step(trajectory[-1])
    return trajectory
