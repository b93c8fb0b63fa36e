"""Gradient descent on f(x) = x² in TF1 (tf.compat.v1): build the graph first, then run it in a Session."""
import tensorflow as tf

# TF1 semantics: ops build a graph instead of running at once. This switch is global to the process
# (it cannot be undone); every dlrosetta cell is its own process, so nothing else is affected.
tf.compat.v1.disable_eager_execution()  # concept: jit

VARIANTS = {
    "optimizer": "GradientDescentOptimizer(lr).minimize(f(x)): the update op, run in a Session",
    "gradients": "tf.compat.v1.gradients + x.assign_sub(lr * grad): the same update op by hand",
}


# %% model
def f(x):
    return x**2  # concept: loss


# %% step
def update_op(x, lr, variant):
    """An op of the graph: nothing is computed until a Session runs it."""
    loss = f(x)
    # concept-absent: zero-grad: each run of the update op computes the gradient anew: nothing accumulates
    if variant == "gradients":
        (grad,) = tf.compat.v1.gradients(loss, [x])  # a symbolic tensor 2x, not a number  # concept: gradient
        return x.assign_sub(lr * grad)  # concept: step
    return tf.compat.v1.train.GradientDescentOptimizer(lr).minimize(loss)  # concept: optimizer, gradient, step


# %% train
def train(spec, rec):
    x = tf.Variable(spec.x0, dtype=tf.float32, name="x")  # concept: params
    update = update_op(x, spec.lr, spec.variant)
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())  # variables hold nothing until then
        trajectory = [float(sess.run(x))]
        for _ in range(spec.steps):
            sess.run(update)  # concept: step
            trajectory.append(float(sess.run(x)))  # a second run: reads x after the update
            rec.step(trajectory[-1])
    return trajectory
