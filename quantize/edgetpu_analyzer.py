"""Will this .tflite run on a Coral Edge TPU? An op-by-op PREDICTION read from the flatbuffer itself.

No TensorFlow needed: the TFLite schema bindings ship with ai-edge-litert
(``ai_edge_litert.schema_py_generated``; TensorFlow's copy is the fallback). Only the real compiler
(and an Edge TPU) confirm; the verdict is always reported as ``predicted``.

Rules, each with its evidence. "docs" = coral.ai/docs/edgetpu/models-intro ("Supported operations",
"Compatibility overview"); "pair X" = ``../shared/data/edgetpu-compiled/X`` (a real model and what the
real compiler made of it; ``tests/test_edgetpu.py::test_analyzer_agrees_with_the_compiler`` checks all five):

R1 op list: only ``SUPPORTED_OPS`` map (docs); custom operators never do (pair posenet: the
   ``PosenetDecoderOp`` at the end stays on the CPU); SPLIT and CONCATENATION do (pair split_concat).
R2 data types: tensors are 8-bit (int8/uint8); int32 only for constants (biases, shapes) (docs;
   ARG_MAX's int64 output, pair deeplabv3). An int8 LSTM's 16-bit cell state is fine: the int8 Keras
   UNIDIRECTIONAL_SEQUENCE_LSTM with its int16 state is mapped (pair keras_lstm_mnist_ptq), so int16
   is accepted on LSTM ops only.
R3 at most 3 dimensions larger than 1 per tensor (docs; the compiler's status "Tensor has unsupported
   rank (up to 3 innermost dimensions mapped)", google-coral/edgetpu#708).
R4 static shapes: no -1 in a shape signature (docs: "tensor sizes are constant at compile-time").
R5 op limits from the docs table: pooling/concatenation without fused activation; MEAN over x/y only.
R6 RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR from a 1x1 input stays on the CPU (pair deeplabv3: the
   image-pooling branch's 1x1 -> 33x33 RESIZE_BILINEAR, align_corners, is where the compiler cut).
   The docs only say "depending on input/output size, this operation may not be mapped"; other
   resizes are predicted to map, with a note that the compiler may decide otherwise.
R7 one Edge TPU segment: the first op that cannot map ends it, and it and EVERY op after it (in
   execution order) run on the CPU even when supported (docs: "the compiler cannot partition the model
   more than once"; pair deeplabv3: CONCATENATION and CONV_2D after the cut are on the CPU).
   Exception: a float->int QUANTIZE of a graph input and a DEQUANTIZE to a float graph output stay on
   the CPU without ending the segment (real compiler log, tests/fixtures/edgetpu/partial_mnist4_v15.log:
   8 ops mapped between an unmapped QUANTIZE and DEQUANTIZE). An int->int QUANTIZE maps (pairs
   keras_lstm_mnist_ptq, posenet).
R8 one subgraph: control flow (WHILE, a float ConvLSTM's loop) is not an Edge TPU op (R1) and the
   model's extra subgraphs are noted.
Noted, never a CPU verdict (unverified here): LSTMs with a large input (users report failures above
~1000 features).
"""
from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

# coral.ai/docs/edgetpu/models-intro "Supported operations" (TFLite builtin names).
SUPPORTED_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
    "FULLY_CONNECTED", "HARD_SWISH", "L2_NORMALIZATION", "LOGISTIC", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE",
    "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUARED_DIFFERENCE",
    "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
})
NO_FUSED_ACTIVATION = frozenset({"AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION"})
LSTM_OPS = frozenset({"LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM"})
RESIZE_OPS = frozenset({"RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"})
INT8_TYPES = ("INT8", "UINT8")
FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64")
LSTM_LARGE_INPUT = 1000
NOT_SUPPORTED = "operation not supported by the Edge TPU"
PREDICTED = "predicted by the analyzer (only edgetpu_compiler and an Edge TPU confirm)"


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as s
        return s
    except ImportError:
        pass
    try:
        from tensorflow.lite.python import schema_py_generated as s
        return s
    except ImportError as e:
        raise RuntimeError("reading .tflite files needs the TFLite schema: pip install ai-edge-litert "
                           "(or tensorflow)") from e


def _names(cls) -> Dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass
class OpReport:
    index: int
    op: str
    supported: bool
    reasons: List[str] = field(default_factory=list)
    on_tpu: bool = False            # after partitioning (R7): inside the Edge TPU segment and supported
    boundary: bool = False          # input QUANTIZE / output DEQUANTIZE kept on the CPU, no cut
    inputs: List[str] = field(default_factory=list)   # "int8[1,16,16,3]" per non-constant input
    outputs: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)    # doubts that are not a CPU verdict


@dataclass
class EdgeTPUReport:
    path: str
    ops: List[OpReport]
    subgraphs: int
    input_dtype: str
    output_dtype: str
    first_unsupported: Optional[int]      # op index where the graph is cut (None: no cut)
    notes: List[str] = field(default_factory=list)

    @property
    def ops_total(self) -> int:
        return len(self.ops)

    @property
    def ops_on_tpu(self) -> int:
        return sum(o.on_tpu for o in self.ops)

    @property
    def mappable(self) -> bool:
        """Every op except CPU boundary (de)quantization maps to the Edge TPU."""
        return all(o.on_tpu or o.boundary for o in self.ops) and self.ops_on_tpu > 0

    @property
    def fraction_on_tpu(self) -> float:
        return self.ops_on_tpu / self.ops_total if self.ops_total else 0.0

    def cpu_ops(self) -> List[str]:
        """Predicted CPU ops in execution order: what the compiler would leave outside edgetpu-custom-op."""
        return [o.op for o in self.ops if not o.on_tpu]

    def unsupported(self) -> List[OpReport]:
        return [o for o in self.ops if not o.supported and not o.boundary]

    def summary(self) -> str:
        head = (f"{self.ops_on_tpu}/{self.ops_total} ops on the Edge TPU (predicted)"
                + (" (100% mappable)" if self.mappable else ""))
        if self.first_unsupported is not None:
            o = self.ops[self.first_unsupported]
            head += (f"; graph cut at op #{o.index} {o.op} ({'; '.join(o.reasons)}): it and the "
                     f"{self.ops_total - o.index - 1} ops after it run on the CPU")
        return head

    def to_dict(self) -> dict:
        """Compact form for bundle.json (per-op detail only for the problems)."""
        counts: Dict[str, Dict[str, int]] = {}
        for o in self.ops:
            c = counts.setdefault(o.op, {"count": 0, "on_tpu": 0})
            c["count"] += 1
            c["on_tpu"] += int(o.on_tpu)
        return {
            "mappable": self.mappable, "ops_total": self.ops_total, "ops_on_tpu": self.ops_on_tpu,
            "fraction_on_tpu": round(self.fraction_on_tpu, 4), "subgraphs": self.subgraphs,
            "input_dtype": self.input_dtype, "output_dtype": self.output_dtype,
            "first_unsupported": None if self.first_unsupported is None else
            {"index": self.first_unsupported, "op": self.ops[self.first_unsupported].op,
             "reasons": self.ops[self.first_unsupported].reasons},
            "unsupported": [{"index": o.index, "op": o.op, "reasons": o.reasons} for o in self.unsupported()][:20],
            "cpu_ops": self.cpu_ops()[:50],
            "op_counts": counts, "notes": self.notes, "source": "analyzer", "verdict": "predicted",
        }


class _Graph:
    """The first subgraph of a parsed model, with the lookups the rules need."""

    def __init__(self, s, model):
        self.s, self.model, self.g = s, model, model.Subgraphs(0)
        self.op_names = _names(s.BuiltinOperator)
        self.type_names = _names(s.TensorType)
        self.inputs = set(int(i) for i in self.g.InputsAsNumpy()) if self.g.InputsLength() else set()
        self.outputs = set(int(i) for i in self.g.OutputsAsNumpy()) if self.g.OutputsLength() else set()

    def op_name(self, op) -> str:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        bc = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = self.op_names.get(bc, f"BUILTIN_{bc}")
        if name == "CUSTOM":
            cc = code.CustomCode()
            name = "CUSTOM:" + (cc.decode() if isinstance(cc, bytes) else str(cc))
        return name

    def dtype(self, t) -> str:
        return self.type_names.get(t.Type(), str(t.Type()))

    def is_const(self, t) -> bool:
        b = self.model.Buffers(t.Buffer())
        return b is not None and b.DataLength() > 0

    @staticmethod
    def shape(t) -> List[int]:
        return [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []

    def describe(self, t) -> str:
        return f"{self.dtype(t).lower()}{self.shape(t)}"

    def const_ints(self, t) -> Optional[List[int]]:
        """Values of a constant int32 tensor (e.g. MEAN's axes), None if not constant."""
        buf = self.model.Buffers(t.Buffer())
        if buf is None or buf.DataLength() == 0:
            return None
        raw = bytes(buf.DataAsNumpy().tobytes())
        return list(struct.unpack("<%di" % (len(raw) // 4), raw))


def _io(op):
    ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
    outs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
    return ins, outs


def _add(reasons: List[str], msg: str) -> None:
    if msg not in reasons:
        reasons.append(msg)


def _dtype_reason(name: str, role: str, tname: str, const: bool) -> Optional[str]:
    """R2 for one tensor of op ``name`` (role: input/output)."""
    if tname in INT8_TYPES:
        return None
    if tname in FLOAT_TYPES:
        if (name == "QUANTIZE" and role == "input") or (name == "DEQUANTIZE" and role == "output"):
            return None
        return f"{tname.lower()} tensor (the Edge TPU runs 8-bit integers only)"
    if tname == "INT32":
        return None if const else "int32 activation tensor"
    if tname == "INT16" and name in LSTM_OPS:
        return None          # the int8 LSTM's 16-bit cell state (pair keras_lstm_mnist_ptq)
    return f"{tname.lower()} tensor"


def _tensor_reasons(G: _Graph, rep: OpReport, ins: List[int], outs: List[int]) -> List[str]:
    """R2-R4 over every tensor the op reads or writes."""
    reasons: List[str] = []
    for role, idxs in (("input", ins), ("output", outs)):
        for ti in idxs:
            if ti < 0:
                continue
            t = G.g.Tensors(ti)
            const = G.is_const(t)
            if not const:
                (rep.inputs if role == "input" else rep.outputs).append(G.describe(t))
            why = _dtype_reason(rep.op, role, G.dtype(t), const)
            if why:
                _add(reasons, why)
            sig = list(t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else []
            if any(d < 0 for d in sig):
                _add(reasons, "dynamic shape (-1 in the shape signature)")
            shape = G.shape(t)
            if not const and sum(1 for d in shape if d > 1) > 3:
                _add(reasons, f"tensor {shape} has more than 3 dimensions larger than 1")
    return reasons


def _op_reasons(G: _Graph, op, rep: OpReport, ins: List[int]) -> List[str]:
    """R1, R5, R6: what the op itself allows."""
    name, reasons = rep.op, []
    if name not in SUPPORTED_OPS:
        reasons.append(NOT_SUPPORTED)
    if name in NO_FUSED_ACTIVATION and _fused_activation(G.s, op, name):
        reasons.append("fused activation function is not supported on this op")
    if name == "MEAN" and len(ins) > 1:
        axes = G.const_ints(G.g.Tensors(ins[1]))
        if axes is not None and G.g.Tensors(ins[0]).ShapeLength() == 4 and any((a % 4) not in (1, 2) for a in axes):
            reasons.append(f"MEAN over axes {axes}: only x/y reduction is supported")
    if name in RESIZE_OPS and ins:
        shape = G.shape(G.g.Tensors(ins[0]))
        if len(shape) == 4 and shape[1] == 1 and shape[2] == 1:
            reasons.append("resize of a 1x1 input (a broadcast): the compiler leaves it on the CPU")
        else:
            rep.notes.append("resize: the compiler maps it or not depending on input/output size")
    if name in LSTM_OPS and ins:
        shape = G.shape(G.g.Tensors(ins[0]))
        if shape and shape[-1] > LSTM_LARGE_INPUT:
            rep.notes.append(f"LSTM input size {shape[-1]} > ~{LSTM_LARGE_INPUT}: users report the compiler "
                             "rejects or offloads larger LSTMs (not verified here)")
    return reasons


def _is_boundary(G: _Graph, rep: OpReport, ins: List[int], outs: List[int]) -> bool:
    """R7's exception: float->int QUANTIZE of a graph input, DEQUANTIZE to a graph output."""
    if rep.op == "QUANTIZE" and ins and ins[0] in G.inputs:
        return G.dtype(G.g.Tensors(ins[0])) in FLOAT_TYPES
    if rep.op == "DEQUANTIZE" and outs and outs[0] in G.outputs:
        return True
    return False


def _check(G: _Graph, i: int) -> OpReport:
    op = G.g.Operators(i)
    rep = OpReport(index=i, op=G.op_name(op), supported=False)
    ins, outs = _io(op)
    rep.reasons = _op_reasons(G, op, rep, ins) + _tensor_reasons(G, rep, ins, outs)
    rep.supported = not rep.reasons
    rep.boundary = _is_boundary(G, rep, ins, outs)
    return rep


def _partition(ops: List[OpReport]) -> Optional[int]:
    """R7: one Edge TPU segment; returns the index of the cut (None: nothing cut)."""
    for rep in ops:
        if rep.boundary:
            continue
        if not rep.supported:
            return rep.index
        rep.on_tpu = True
    return None


def _model_notes(G: _Graph, n_sub: int, in_dt: str) -> List[str]:
    notes = []
    if n_sub > 1:
        notes.append(f"{n_sub} subgraphs (control flow such as WHILE): the Edge TPU compiler supports one")
    if in_dt.startswith("float"):
        notes.append("float model input: not a full-integer model (convert with int8 I/O for the Edge TPU)")
    return notes


def analyze(path: str) -> EdgeTPUReport:
    """Read ``path`` and apply the rules R1-R8 (module docstring) op by op; a prediction."""
    s = _schema()
    with open(path, "rb") as f:
        data = f.read()
    try:
        model = s.Model.GetRootAsModel(data, 0)
        G = _Graph(s, model)
    except Exception as e:
        raise ValueError(f"{path}: not a TFLite flatbuffer ({e})") from e
    ops = [_check(G, i) for i in range(G.g.OperatorsLength())]
    cut = _partition(ops)
    first_in = [int(G.g.InputsAsNumpy()[0])] if G.g.InputsLength() else []
    first_out = [int(G.g.OutputsAsNumpy()[0])] if G.g.OutputsLength() else []
    in_dt = G.dtype(G.g.Tensors(first_in[0])).lower() if first_in else "?"
    out_dt = G.dtype(G.g.Tensors(first_out[0])).lower() if first_out else "?"
    n_sub = model.SubgraphsLength()
    return EdgeTPUReport(path=path, ops=ops, subgraphs=n_sub, input_dtype=in_dt, output_dtype=out_dt,
                         first_unsupported=cut, notes=_model_notes(G, n_sub, in_dt))


def _fused_activation(s, op, name: str) -> bool:
    try:
        opts = op.BuiltinOptions()
        if opts is None:
            return False
        o = s.ConcatenationOptions() if name == "CONCATENATION" else s.Pool2DOptions()
        o.Init(opts.Bytes, opts.Pos)
        return int(o.FusedActivationFunction()) != 0
    except Exception:
        return False


def format_report(report: EdgeTPUReport, limit: int = 40) -> str:
    """Human-readable op table (used by ``edge-quantize analyze``)."""
    lines = [f"{report.path}: {report.summary()}"]
    for n in report.notes:
        lines.append(f"  note: {n}")
    for o in report.ops[:limit]:
        where = "TPU" if o.on_tpu else ("CPU (boundary)" if o.boundary else "CPU")
        why = "; ".join(o.reasons + [f"note: {n}" for n in o.notes])
        lines.append(f"  #{o.index:<3d} {o.op:<30s} {where:<15s} {why}")
    if len(report.ops) > limit:
        lines.append(f"  ... {len(report.ops) - limit} more ops")
    lines.append(f"  ({PREDICTED})")
    return "\n".join(lines)


def to_json(report: EdgeTPUReport) -> dict:
    d = report.to_dict()
    d["ops"] = [asdict(o) for o in report.ops]
    return d
