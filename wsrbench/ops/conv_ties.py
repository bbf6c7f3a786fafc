r"""A 2-D convolution is a fully connected layer with tied, mostly-zero weights.

The derivation is in docs/design.md#a-convolution-as-a-tied-fc-layer.

For an input of shape (C_in, H, W) and a kernel K of shape (C_out, C_in, KH, KW) with stride
(sh, sw), zero padding (ph, pw) and dilation (dh, dw), output position (o, p, q) reads input
(c, h, w) through kernel tap (o, c, kh, kw) exactly when

.. math:: h = p\,s_h - p_h + k_h d_h, \qquad w = q\,s_w - p_w + k_w d_w

lands inside the input (taps landing in the padding multiply zeros). So the FC matrix M, of
shape (C_out H_out W_out, C_in H W) with rows and columns in C order, has M[row, col] = K[tap] for
at most one tap per entry, and 0 elsewhere. :func:`conv2d_ties` returns those tie groups (the flat
tap index) and the zero mask, with the parameter counts: ``n_free`` taps against ``n_total`` FC
entries.

The matrices are dense (n_out x n_in): meant for small layers, tests and teaching.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import arrays, checks
from .projection import TieProjector


def _pair(v, name):
    t = (v, v) if np.isscalar(v) else tuple(v)
    is_int = [isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in t]
    if len(t) != 2 or not all(is_int):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(t[0]), int(t[1])


@dataclass(frozen=True)
class ConvTies:
    """Tie structure of a conv2d seen as a fully connected layer (see the module docstring).

    Built by :func:`conv2d_ties`; n_out = C_out H_out W_out, n_in = C_in H W.

    Attributes
    ----------
    in_shape : tuple of int
        (C_in, H, W).
    out_shape : tuple of int
        (C_out, H_out, W_out).
    kernel_shape : tuple of int
        (C_out, C_in, KH, KW).
    groups : ndarray of int64, shape (n_out, n_in)
        The flat kernel-tap index of each FC entry, -1 where the entry is zero.
    mask : ndarray of bool, shape (n_out, n_in)
        True where the entry is a kernel tap.
    bias_groups : ndarray of int64, shape (n_out,)
        The output channel of each FC output (a conv bias is per channel).
    """
    in_shape: tuple
    out_shape: tuple
    kernel_shape: tuple
    groups: np.ndarray
    mask: np.ndarray
    bias_groups: np.ndarray

    @property
    def n_total(self) -> int:
        """Entries of the FC weight matrix: its parameter count without ties."""
        return int(self.mask.size)

    @property
    def n_nonzero(self) -> int:
        """Entries that are kernel taps (not forced to zero)."""
        return int(self.mask.sum())

    @property
    def n_free(self) -> int:
        """Distinct kernel taps used: the tied layer's free parameters (= kernel size unless some
        tap only ever meets padding)."""
        return int(np.unique(self.groups[self.mask]).size)

    def fc_weight(self, kernel):
        """The FC matrix M of a kernel: M[row, col] = K.flat[groups[row, col]] on the mask, else 0.

        Parameters
        ----------
        kernel : ndarray or torch.Tensor of shape ``kernel_shape``

        Returns
        -------
        M : array of kernel's kind and dtype, shape (n_out, n_in)
            Differentiable with respect to a torch kernel.

        Raises
        ------
        ValueError
            If kernel's shape is not ``kernel_shape``.
        """
        if tuple(kernel.shape) != self.kernel_shape:
            raise ValueError(f"kernel must have shape {self.kernel_shape}, "
                             f"got {tuple(kernel.shape)}")
        rows, cols = np.nonzero(self.mask)
        taps = self.groups[rows, cols]
        if arrays.array_kind(kernel) == "torch":
            import torch

            out = kernel.new_zeros(self.groups.shape)
            idx = torch.as_tensor(taps, device=kernel.device)
            out[torch.as_tensor(rows, device=kernel.device),
                torch.as_tensor(cols, device=kernel.device)] = kernel.reshape(-1)[idx]
            return out
        k = np.asarray(kernel)
        out = np.zeros(self.groups.shape, dtype=k.dtype)
        out[rows, cols] = k.reshape(-1)[taps]
        return out

    def _checked(self, weight):
        w = checks.as_float(weight, "weight")
        checks.check_same_shape(self.mask, "mask", w, "weight")
        return w

    def project(self, weight, *, backend="auto"):
        """Nearest FC matrix that is a convolution (Euclidean): each tap entry replaced by the mean
        of its tie group, every other entry 0.

        Parameters
        ----------
        weight : array (NumPy, torch or CUDA) of shape (n_out, n_in)
            float32 and float64 keep their dtype; integers become float64. Never modified.
        backend : str, default "auto"
            A registered backend, or "auto" to follow weight's array kind.

        Returns
        -------
        array of weight's kind, shape and dtype

        Raises
        ------
        ValueError
            If weight's shape is not (n_out, n_in) or it has a non-finite entry.
        TypeError
            If weight's dtype is not float32, float64 or integer.
        """
        w = self._checked(weight)
        tied = TieProjector(self.groups).project(w, backend=backend, check=False)
        if arrays.array_kind(tied) == "cuda":  # no elementwise ops on device arrays: mask on the host
            masked = np.where(self.mask, arrays.to_host(tied), 0).astype(tied.dtype)
            return arrays.like(masked, tied)
        return tied * arrays.like(self.mask, tied)

    def kernel(self, weight):
        """The kernel of a tied FC matrix: the mean of each tap's entries (the inverse of
        :meth:`fc_weight` on tied matrices).

        Parameters
        ----------
        weight : array (NumPy, torch or CUDA) of shape (n_out, n_in)

        Returns
        -------
        ndarray of shape ``kernel_shape``, weight's dtype, on the host
            A tap that only ever meets padding (no entry) is 0.

        Raises
        ------
        ValueError, TypeError
            As :meth:`project`.
        """
        w = arrays.to_host(self._checked(weight))
        size = int(np.prod(self.kernel_shape))
        g = self.groups[self.mask]
        sums = np.bincount(g, weights=w[self.mask], minlength=size)
        counts = np.bincount(g, minlength=size)
        return (sums / np.maximum(counts, 1)).reshape(self.kernel_shape).astype(w.dtype)


def conv2d_ties(in_shape, kernel_shape, *, stride=1, padding=0, dilation=1) -> ConvTies:
    r"""Tie groups and zero mask that make a FC layer compute ``conv2d(x, K, stride, padding)``.

    FC entry (row, col) = ((o H_out + p) W_out + q, (c H + h) W + w) holds tap (o, c, k_h, k_w) when

    .. math:: h = p\,s_h - p_h + k_h d_h, \qquad w = q\,s_w - p_w + k_w d_w

    lands inside the input, and is 0 otherwise, with

    .. math:: H_{out} = \lfloor (H + 2 p_h - d_h (KH - 1) - 1) / s_h \rfloor + 1

    (and likewise W_out). With M = ``ties.fc_weight(K)``, ``x.reshape(N, -1) @ M.T`` equals
    ``torch.nn.functional.conv2d(x, K, stride=stride, padding=padding, dilation=dilation)``
    flattened per sample (a per-channel bias b becomes the FC bias ``b[ties.bias_groups]``).

    Parameters
    ----------
    in_shape : tuple of 3 ints
        (C_in, H, W).
    kernel_shape : tuple of 4 ints
        (C_out, C_in, KH, KW), torch's layout (no channel groups).
    stride, padding, dilation : int or pair of ints, default 1, 0, 1
        As in ``torch.nn.functional.conv2d``: (vertical, horizontal), or one int for both.

    Returns
    -------
    ConvTies
        Dense (n_out, n_in) groups and mask: meant for small layers, tests and teaching.

    Raises
    ------
    ValueError
        If a shape has the wrong length or a non-positive entry, the channel counts disagree,
        stride or dilation < 1, padding < 0, or the dilated kernel does not fit the padded input.
    TypeError
        If stride, padding or dilation is not an int or a pair of ints.
    """
    if len(in_shape) != 3:
        raise ValueError(f"in_shape must be (C_in, H, W), got {in_shape!r}")
    if len(kernel_shape) != 4:
        raise ValueError(f"kernel_shape must be (C_out, C_in, KH, KW), got {kernel_shape!r}")
    c_in, h_in, w_in = (int(v) for v in in_shape)
    c_out, kc, kh, kw = (int(v) for v in kernel_shape)
    if kc != c_in:
        raise ValueError(f"kernel_shape has {kc} input channels but in_shape has {c_in}")
    (sh, sw), (ph, pw), (dh, dw) = (_pair(stride, "stride"), _pair(padding, "padding"),
                                    _pair(dilation, "dilation"))
    if min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0 or min(c_in, h_in, w_in, c_out, kh, kw) < 1:
        raise ValueError("stride and dilation must be >= 1, padding >= 0, and shapes positive")
    h_out = (h_in + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (w_in + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"the kernel (with dilation) does not fit the padded input: output would "
                         f"be {h_out} x {w_out}")
    # Broadcast over (o, p, q, c, kh, kw): every (output position, tap) pair at once.
    o, p, q, c, a, b = np.ix_(np.arange(c_out), np.arange(h_out), np.arange(w_out),
                              np.arange(c_in), np.arange(kh), np.arange(kw))
    h = p * sh - ph + a * dh
    w = q * sw - pw + b * dw
    full = (c_out, h_out, w_out, c_in, kh, kw)
    valid = np.broadcast_to((h >= 0) & (h < h_in) & (w >= 0) & (w < w_in), full)
    rows = np.broadcast_to((o * h_out + p) * w_out + q, full)[valid]
    cols = np.broadcast_to((c * h_in + h) * w_in + w, full)[valid]
    taps = np.broadcast_to(((o * c_in + c) * kh + a) * kw + b, full)[valid]
    n_out, n_in = c_out * h_out * w_out, c_in * h_in * w_in
    groups = np.full((n_out, n_in), -1, dtype=np.int64)
    groups[rows, cols] = taps
    return ConvTies((c_in, h_in, w_in), (c_out, h_out, w_out), (c_out, c_in, kh, kw), groups,
                    groups >= 0, np.repeat(np.arange(c_out, dtype=np.int64), h_out * w_out))
