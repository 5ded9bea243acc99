"""Which :class:`~mperror.emulate.policy.OpClass` an ATen operator belongs to, from its schema.

Computed once per ``OpOverload`` and cached. The schema says whether an operator returns an
alias of an input (a view) and which arguments it writes to (in-place and ``out=`` variants);
torch's operator tags say which operators are pointwise, reductions, or draw random numbers (a
tag on any overload of an operator counts for all of them: torch tags some only). Names settle
the rest; what is left (linear algebra, quantised and sparse kernels, fused CUDA attention) is
unclassified, computed and rounded as elementwise, and listed by the emulation's report.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from mperror.emulate.policy import OpClass

__all__ = ["OpInfo", "classify"]

# Aliases whose schema does not say so: _unsafe_view reshapes a fresh temporary in place; the
# unsafe splits (GRU and LSTM cells split their gates with them) return views as split does.
_VIEW = {
    "_unsafe_view", "lift_fresh", "alias", "detach", "_reshape_alias", "unsafe_split",
    "unsafe_split_with_sizes", "unsafe_chunk",
}  # fmt: skip

# Operators with no floating-point values to round.
_PASS = {
    "empty", "empty_like", "empty_strided", "empty_permuted", "new_empty", "new_empty_strided",
    "zero", "zeros", "zeros_like", "new_zeros", "_efficientzerotensor", "resize", "resize_as",
    "set", "_local_scalar_dense", "equal", "is_same_size", "_has_compatible_shallow_copy_type",
    "is_nonzero", "record_stream", "_assert_async", "_assert_scalar", "sym_size", "sym_stride",
    "sym_numel", "sym_storage_offset", "is_set_to", "_pin_memory", "resolve_conj",
    "resolve_neg", "_make_dep_token", "_functional_assert_async", "_linalg_check_errors",
    "_new_zeros_with_same_feature_meta", "_has_same_storage_numel",
}  # fmt: skip

# GradScaler's bookkeeping keeps the scale and the found-inf flag in float32 by design.
_NATIVE = {"_amp_update_scale", "_amp_foreach_non_finite_check_and_unscale"}

# torch's CUDA autocast lower_precision_fp list as ATen operators (see policy.py for the source),
# plus dot and vdot (autocast's "promote" list: a dot product is a matmul for the emulator).
_MATMUL = {
    "mm", "bmm", "addmm", "baddbmm", "addbmm", "addmv", "addr", "mv", "dot", "vdot",
    "_addmm_activation", "convolution", "_convolution", "convolution_backward", "conv_tbc",
    "conv_tbc_backward", "linalg_vecdot", "_prelu_kernel", "_prelu_kernel_backward",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention_for_cpu_backward", "linear", "linear_backward",
    "mkldnn_rnn_layer", "mkldnn_rnn_layer_backward", "_trilinear",
    # the fused RNN layers of cuDNN and MIOpen (nn.LSTM, nn.GRU, nn.RNN on a GPU), here and not
    # by their random-tag (dropout), which made them sources: run on unrounded inputs
    "_cudnn_rnn", "_cudnn_rnn_backward", "miopen_rnn", "miopen_rnn_backward",
}  # fmt: skip

_FFT = {"_fft_r2c", "_fft_c2c", "_fft_c2r"}

# Results are copies or selections of input values (or of the operator's scalar arguments), so
# the native kernel computes them exactly in any dtype.
_DATA = {
    "clone", "_to_copy", "copy", "cat", "stack", "index", "_unsafe_index", "index_select",
    "gather", "take", "where", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d",
    "reflection_pad3d", "replication_pad1d", "replication_pad2d", "replication_pad3d", "flip",
    "roll", "repeat", "select_backward", "slice_backward", "diagonal_backward",
    "as_strided_scatter", "slice_scatter", "select_scatter", "diagonal_scatter", "expand_copy",
    "permute_copy", "view_copy", "t_copy", "transpose_copy", "unsqueeze_copy", "squeeze_copy",
    "alias_copy", "detach_copy", "lift_fresh_copy", "narrow_copy", "unfold_copy",
    "masked_fill", "fill", "full_like", "ones_like", "new_ones", "new_full", "relu", "abs",
    "neg", "maximum", "minimum", "fmax", "fmin", "clamp", "clamp_min", "clamp_max", "hardtanh",
    "threshold", "threshold_backward", "sign", "sgn", "floor", "ceil", "trunc", "copysign",
    "max", "min", "amax", "amin", "aminmax", "sort", "topk", "kthvalue", "median", "nanmedian",
    "mode", "cummax", "cummin", "msort", "argmax", "argmin", "argsort", "eq", "ne", "lt", "le",
    "gt", "ge", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "logical_and",
    "logical_or", "logical_not", "logical_xor", "nonzero", "masked_select", "unique",
    "_unique2", "unique_consecutive", "unique_dim", "any", "all", "count_nonzero",
    "searchsorted", "bucketize", "tril", "triu", "diag", "diag_embed", "embedding",
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices",
    "max_pool3d_with_indices", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    "im2col", "index_fill", "repeat_interleave", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "fractional_max_pool2d", "fractional_max_pool3d", "max_unpool2d", "max_unpool3d", "rot90",
    "diagonal_copy", "as_strided_copy", "block_diag", "unbind_copy", "split_copy",
    "split_with_sizes_copy", "_reshape_copy", "_unsafe_masked_index", "masked_scatter_backward",
    "hardtanh_backward", "clip", "heaviside",
    # out= overloads of the unsafe views (the views themselves are classed above)
    "_unsafe_view", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk",
}  # fmt: skip

# Sums inside: softmax, normalisation layers, losses, pooling, scatter-adds, interpolation.
_REDUCTION = {
    "sum", "nansum", "mean", "nanmean", "prod", "cumsum", "cumprod", "logcumsumexp",
    "logsumexp", "var", "std", "var_mean", "std_mean", "norm", "linalg_vector_norm",
    "linalg_matrix_norm", "frobenius_norm", "nuclear_norm", "dist", "renorm", "trace",
    "_softmax", "_log_softmax", "_softmax_backward_data", "_log_softmax_backward_data",
    "native_layer_norm", "native_layer_norm_backward", "native_batch_norm",
    "native_batch_norm_backward", "_native_batch_norm_legit",
    "_native_batch_norm_legit_functional", "_native_batch_norm_legit_no_training",
    "_batch_norm_with_update", "_batch_norm_with_update_functional", "_batch_norm_no_update",
    "batch_norm_backward", "native_group_norm", "native_group_norm_backward", "_fused_rms_norm",
    "_fused_rms_norm_backward", "mse_loss", "mse_loss_backward", "nll_loss_forward",
    "nll_loss_backward", "nll_loss2d_forward", "nll_loss2d_backward", "smooth_l1_loss",
    "smooth_l1_loss_backward", "huber_loss", "huber_loss_backward", "soft_margin_loss",
    "soft_margin_loss_backward", "binary_cross_entropy", "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits", "multilabel_margin_loss_forward",
    "multilabel_margin_loss_backward", "multi_margin_loss", "multi_margin_loss_backward",
    "kl_div", "_foreach_norm", "_foreach_max", "_cdist_forward", "_cdist_backward",
    "_pdist_forward", "_pdist_backward",
    "_euclidean_dist", "embedding_dense_backward", "embedding_backward", "scatter_add",
    "scatter_reduce", "index_add", "index_reduce", "col2im", "unfold_backward",
    "max_pool2d_with_indices_backward", "max_pool3d_with_indices_backward", "avg_pool1d",
    "avg_pool2d", "avg_pool3d", "avg_pool2d_backward", "avg_pool3d_backward",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "_adaptive_avg_pool2d", "_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d",
    "_adaptive_avg_pool3d_backward", "upsample_nearest1d", "upsample_nearest2d",
    "upsample_nearest3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d",
    "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
    "_upsample_bilinear2d_aa", "upsample_trilinear3d", "upsample_bicubic2d",
    "_upsample_bicubic2d_aa", "upsample_nearest1d_backward", "upsample_nearest2d_backward",
    "upsample_nearest3d_backward", "_upsample_nearest_exact1d_backward",
    "_upsample_nearest_exact2d_backward", "_upsample_nearest_exact3d_backward",
    "upsample_linear1d_backward", "upsample_bilinear2d_backward",
    "_upsample_bilinear2d_aa_backward", "upsample_trilinear3d_backward",
    "upsample_bicubic2d_backward", "_upsample_bicubic2d_aa_backward", "grid_sampler_2d",
    "grid_sampler_2d_backward", "grid_sampler_3d", "grid_sampler_3d_backward",
    "adaptive_max_pool2d_backward", "adaptive_max_pool3d_backward",
    "fractional_max_pool2d_backward", "fractional_max_pool3d_backward",
    "reflection_pad1d_backward", "reflection_pad2d_backward", "reflection_pad3d_backward",
    "replication_pad1d_backward", "replication_pad2d_backward", "replication_pad3d_backward",
    "_embedding_bag", "_embedding_bag_forward_only", "_embedding_bag_backward",
    "_embedding_bag_dense_backward", "_embedding_bag_per_sample_weights_backward",
    "_weight_norm_interface", "_weight_norm_interface_backward", "_safe_softmax", "histc",
    "segment_reduce", "_segment_reduce_backward", "_upsample_lanczos2d_aa",
    "_upsample_lanczos2d_aa_backward",
    # batch norm as cuDNN, MIOpen and the CUDA kernels of SyncBatchNorm and the running
    # statistics compute it; bincount sums its weights
    "cudnn_batch_norm", "cudnn_batch_norm_backward", "miopen_batch_norm",
    "miopen_batch_norm_backward", "batch_norm_stats", "batch_norm_update_stats",
    "batch_norm_gather_stats", "batch_norm_gather_stats_with_counts",
    "batch_norm_backward_reduce", "bincount",
}  # fmt: skip

# Operators that write to arguments their schema does not mark as written (batch norm's
# running statistics), by argument position.
_UNDECLARED_WRITES = {
    "native_batch_norm": (3, 4),
    "batch_norm_update_stats": (1, 2),
    "cudnn_batch_norm": (3, 4),
    "miopen_batch_norm": (3, 4),
}

# Elementwise without torch's pointwise tag on any overload (writes at indices, fused optimizer
# steps, activations and their derivatives).
_ELEMENTWISE = {
    "index_put", "_index_put_impl", "index_copy", "masked_scatter", "put", "scatter",
    "polar", "complex", "_fused_adam", "_fused_adamw", "_fused_sgd", "_fused_adagrad",
    "hardswish", "hardswish_backward", "hardsigmoid_backward", "elu_backward",
    "leaky_relu_backward", "log_sigmoid_forward", "log_sigmoid_backward", "softplus_backward",
    "glu", "glu_backward", "rrelu_with_noise_backward", "_add_relu", "_masked_scale",
    "floor_divide", "mish_backward", "batch_norm_elemt", "batch_norm_backward_elemt",
    "_thnn_fused_lstm_cell", "_thnn_fused_lstm_cell_backward_impl", "_thnn_fused_gru_cell",
    "_thnn_fused_gru_cell_backward",
}  # fmt: skip


@dataclass(frozen=True)
class OpInfo:
    """What the emulator needs to know about one ``OpOverload``.

    ``mutated`` lists the arguments the operator writes to, as ``(position, name, is_list)``;
    ``returns_mutated[j]`` is the index in ``mutated`` of the argument that return ``j`` is
    (in-place and ``out=`` variants return their mutated argument), or ``None``.
    ``dtype_args`` names the arguments of type ``ScalarType`` (``dtype=``), which the emulator
    widens along with the tensors. ``factory``: the operator takes no tensor argument.
    """

    name: str
    op_class: OpClass
    mutated: tuple[tuple[int, str, bool], ...]
    returns_mutated: tuple[int | None, ...]
    dtype_args: tuple[tuple[int, str], ...]
    factory: bool

    @property
    def simple(self) -> bool:
        """Writes nothing, returns fresh tensors whose dtype follows its inputs' alone."""
        return not self.mutated and not self.dtype_args and self.name not in _DTYPE_FROM_VALUES


# Output dtype set by an argument's value: _softmax(half, dim, half_to_float=True) is float32.
_DTYPE_FROM_VALUES = {"_softmax", "_log_softmax"}


# Tags that hold for every overload of an operator once one overload carries them: torch tags
# some overloads only (``gelu.default`` is pointwise, ``gelu.out`` and ``gelu_.default`` carry
# no tag), so an operator's class is read from its whole family.
_FAMILY_TAGS = frozenset(
    {torch.Tag.pointwise, torch.Tag.reduction, torch.Tag.nondeterministic_seeded}
)


def _family_tags(func: torch._ops.OpOverload, name: str) -> set:
    """The tags of ``func`` and, of :data:`_FAMILY_TAGS`, those of any overload of its operator
    or of its functional base ``name`` in aten (``aten::gelu`` for ``gelu_``, ``gelu.out`` and
    ``prims::add``)."""
    tags = set(func.tags)
    packets = [func.overloadpacket]
    # prims (torch's primitive operators, which torch.func's decompositions run) are named
    # after their aten counterparts
    base = getattr(torch.ops.aten, name, None) if func.namespace in ("aten", "prims") else None
    if base is not None and base is not func.overloadpacket:
        packets.append(base)
    for packet in packets:
        for overload in packet.overloads():
            tags.update(_FAMILY_TAGS.intersection(getattr(packet, overload).tags))
    return tags


def _base_name(func: torch._ops.OpOverload) -> str:
    name = func._schema.name.split("::", 1)[-1]
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]  # in-place variants (add_, _foreach_add_) share their base's class
    return name


@functools.cache
def classify(func: torch._ops.OpOverload) -> OpInfo:
    """The :class:`OpInfo` of an ATen ``OpOverload`` (cached)."""
    schema = func._schema
    name = _base_name(func)
    tags = _family_tags(func, name)
    arguments = schema.arguments

    mutated: list[tuple[int, str, bool]] = []
    undeclared = _UNDECLARED_WRITES.get(name, ())
    for i, arg in enumerate(arguments):
        if (arg.alias_info is not None and arg.alias_info.is_write) or i in undeclared:
            is_list = isinstance(arg.type, torch.ListType)
            mutated.append((i, arg.name, is_list))
    returns_mutated: list[int | None] = []
    returns_view = False
    for ret in schema.returns:
        alias = ret.alias_info
        if alias is None:
            returns_mutated.append(None)
        elif not alias.is_write:
            returns_view = True
            returns_mutated.append(None)
        else:
            match = None
            for k, (i, _, _) in enumerate(mutated):
                written = arguments[i].alias_info
                if written is not None and written.before_set == alias.before_set:
                    match = k
            returns_mutated.append(match)
    # ScalarType arguments have type int in the schema; these are their names.
    dtype_args = tuple(
        (i, arg.name)
        for i, arg in enumerate(arguments)
        if arg.name in ("dtype", "out_dtype", "input_dtype")
    )
    factory = not any(
        isinstance(arg.type, torch.TensorType)
        or (
            isinstance(arg.type, (torch.ListType, torch.OptionalType)) and "Tensor" in str(arg.type)
        )
        for arg in arguments
    )

    namespace = schema.name.split("::", 1)[0]
    if namespace == "profiler":
        op_class = OpClass.PASS
    elif (
        func.is_view
        or returns_view
        or torch.Tag.inplace_view in tags
        or (name in _VIEW and not mutated)  # an out= overload writes a copy
    ):
        op_class = OpClass.VIEW
    elif name in _NATIVE:
        op_class = OpClass.NATIVE
    elif name in _PASS:
        op_class = OpClass.PASS
    elif name in _MATMUL:
        op_class = OpClass.MATMUL
    elif name in _FFT:
        op_class = OpClass.FFT
    elif name in _DATA:
        op_class = OpClass.DATA
    elif torch.Tag.nondeterministic_seeded in tags or factory:
        op_class = OpClass.SOURCE
    elif name in _REDUCTION or torch.Tag.reduction in tags:
        op_class = OpClass.REDUCTION
    elif name in _ELEMENTWISE or torch.Tag.pointwise in tags or name.startswith("_foreach_"):
        op_class = OpClass.ELEMENTWISE
    else:
        op_class = OpClass.UNCLASSIFIED
    return OpInfo(
        name=name,
        op_class=op_class,
        mutated=tuple(mutated),
        returns_mutated=tuple(returns_mutated),
        dtype_args=dtype_args,
        factory=factory,
    )
