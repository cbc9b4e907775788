"""Will this .tflite run on a Coral Edge TPU? An op-by-op answer read from the flatbuffer itself.

No TensorFlow needed: the TFLite schema bindings ship with ai-edge-litert
(``ai_edge_litert.schema_py_generated``; TensorFlow's copy is the fallback) on top of the
``flatbuffers`` package. The rules are Coral's documented requirements
(coral.ai/docs/edgetpu/models-intro, "Supported operations"):

* only the listed operations (``SUPPORTED_OPS``), with their known limitations
  (pooling/concatenation without fused activation, MEAN over x/y only);
* 8-bit integer tensors only (int8/uint8; int32 is allowed for biases and shape operands);
* static shapes (no -1 in a shape signature), compile-time constant weights;
* tensors with at most 3 dimensions larger than 1 ("only the 3 innermost dimensions may be > 1");
* LSTM: unidirectional only, and in practice its input size must stay small (users report
  compile failures or CPU fallback above ~1000 input features; flagged, not proven).

The Edge TPU compiler partitions the graph once: the first unsupported op (in execution order) and
everything after it run on the CPU. A float->int QUANTIZE at a graph input and a DEQUANTIZE at a
graph output stay on the CPU without cutting the graph (seen in real compiler logs).
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
INT8_TYPES = ("INT8", "UINT8")
LSTM_MAX_INPUT = 1000


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
    on_tpu: bool = False            # after partitioning: before the cut and supported
    boundary: bool = False          # input QUANTIZE / output DEQUANTIZE kept on the CPU, no cut
    inputs: List[str] = field(default_factory=list)   # "int8[1,16,16,3]" per non-constant input
    outputs: List[str] = field(default_factory=list)


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

    def unsupported(self) -> List[OpReport]:
        return [o for o in self.ops if not o.supported and not o.boundary]

    def summary(self) -> str:
        head = (f"{self.ops_on_tpu}/{self.ops_total} ops on the Edge TPU"
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
            "op_counts": counts, "notes": self.notes, "source": "analyzer",
        }


def _const_ints(model, tensor) -> Optional[List[int]]:
    """Values of a constant int32 tensor (e.g. MEAN's axes), None if not constant."""
    buf = model.Buffers(tensor.Buffer())
    if buf is None or buf.DataLength() == 0:
        return None
    raw = bytes(buf.DataAsNumpy().tobytes())
    return list(struct.unpack("<%di" % (len(raw) // 4), raw))


def analyze(path: str) -> EdgeTPUReport:
    """Read ``path`` and apply the Edge TPU rules op by op (see module docstring)."""
    s = _schema()
    with open(path, "rb") as f:
        data = f.read()
    try:
        model = s.Model.GetRootAsModel(data, 0)
    except Exception as e:
        raise ValueError(f"{path}: not a TFLite flatbuffer ({e})") from e
    op_names = _names(s.BuiltinOperator)
    type_names = _names(s.TensorType)
    g = model.Subgraphs(0)
    n_sub = model.SubgraphsLength()
    graph_inputs = set(int(i) for i in g.InputsAsNumpy()) if g.InputsLength() else set()
    graph_outputs = set(int(i) for i in g.OutputsAsNumpy()) if g.OutputsLength() else set()

    def is_const(t) -> bool:
        b = model.Buffers(t.Buffer())
        return b is not None and b.DataLength() > 0

    def describe(t) -> str:
        shape = list(t.ShapeAsNumpy()) if t.ShapeLength() else []
        return f"{type_names.get(t.Type(), t.Type()).lower()}{[int(d) for d in shape]}"

    ops: List[OpReport] = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        bc = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = op_names.get(bc, f"BUILTIN_{bc}")
        if name == "CUSTOM":
            cc = code.CustomCode()
            name = "CUSTOM:" + (cc.decode() if isinstance(cc, bytes) else str(cc))
        reasons: List[str] = []
        if name not in SUPPORTED_OPS:
            reasons.append("operation not supported by the Edge TPU")
        ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
        rep = OpReport(index=i, op=name, supported=False)
        dyn = False
        for role, idxs in (("input", ins), ("output", outs)):
            for ti in idxs:
                if ti < 0:
                    continue
                t = g.Tensors(ti)
                tname = type_names.get(t.Type(), str(t.Type()))
                const = is_const(t)
                if not const:
                    (rep.inputs if role == "input" else rep.outputs).append(describe(t))
                if tname in ("FLOAT32", "FLOAT16", "FLOAT64") and not (name == "QUANTIZE" and role == "input") \
                        and not (name == "DEQUANTIZE" and role == "output"):
                    msg = f"{tname.lower()} tensor (the Edge TPU runs 8-bit integers only)"
                    if msg not in reasons:
                        reasons.append(msg)
                elif tname not in INT8_TYPES + ("INT32",) and not (tname in ("FLOAT32",)):
                    msg = f"{tname.lower()} tensor"
                    if msg not in reasons:
                        reasons.append(msg)
                elif tname == "INT32" and not const:
                    msg = "int32 activation tensor"
                    if msg not in reasons:
                        reasons.append(msg)
                sig = list(t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else []
                if any(d < 0 for d in sig) and not dyn:
                    reasons.append("dynamic shape (-1 in the shape signature)")
                    dyn = True
                shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
                if not const and sum(1 for d in shape if d > 1) > 3:
                    msg = f"tensor {shape} has more than 3 dimensions larger than 1"
                    if msg not in reasons:
                        reasons.append(msg)
        if name in NO_FUSED_ACTIVATION:
            fused = _fused_activation(s, op, name)
            if fused:
                reasons.append("fused activation function is not supported on this op")
        if name == "MEAN" and len(ins) > 1:
            axes = _const_ints(model, g.Tensors(ins[1]))
            rank = g.Tensors(ins[0]).ShapeLength()
            if axes is not None and rank == 4 and any((a % 4) not in (1, 2) for a in axes):
                reasons.append(f"MEAN over axes {axes}: only x/y reduction is supported")
        if name in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM") and ins:
            shape = [int(d) for d in g.Tensors(ins[0]).ShapeAsNumpy()]
            if shape and shape[-1] > LSTM_MAX_INPUT:
                reasons.append(f"LSTM input size {shape[-1]} > ~{LSTM_MAX_INPUT} (users report the compiler "
                               "rejects or offloads larger LSTMs)")
        rep.reasons = reasons
        rep.supported = not reasons
        if name == "QUANTIZE" and ins and ins[0] in graph_inputs and reasons == [] and \
                type_names.get(g.Tensors(ins[0]).Type()) == "FLOAT32":
            rep.boundary = True
        if name == "DEQUANTIZE" and outs and outs[0] in graph_outputs:
            rep.boundary = True
        ops.append(rep)

    # float->int8 QUANTIZE of a float input: CPU boundary, not a cut
    for rep in ops:
        if rep.op == "QUANTIZE" and rep.inputs and rep.inputs[0].startswith("float32"):
            rep.boundary = True
    cut = None
    for rep in ops:
        if rep.boundary:
            continue
        if not rep.supported:
            cut = rep.index
            break
        rep.on_tpu = True
    notes = []
    if n_sub > 1:
        notes.append(f"{n_sub} subgraphs (control flow such as WHILE): the Edge TPU compiler supports one")
    t_in = g.Tensors(int(g.InputsAsNumpy()[0])) if g.InputsLength() else None
    t_out = g.Tensors(int(g.OutputsAsNumpy()[0])) if g.OutputsLength() else None
    in_dt = type_names.get(t_in.Type(), "?").lower() if t_in is not None else "?"
    out_dt = type_names.get(t_out.Type(), "?").lower() if t_out is not None else "?"
    if in_dt.startswith("float"):
        notes.append("float model input: not a full-integer model (convert with int8 I/O for the Edge TPU)")
    return EdgeTPUReport(path=path, ops=ops, subgraphs=n_sub, input_dtype=in_dt, output_dtype=out_dt,
                         first_unsupported=cut, notes=notes)


def _fused_activation(s, op, name: str) -> bool:
    try:
        opts = op.BuiltinOptions()
        if opts is None:
            return False
        if name == "CONCATENATION":
            o = s.ConcatenationOptions()
        else:
            o = s.Pool2DOptions()
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
        why = "; ".join(o.reasons)
        lines.append(f"  #{o.index:<3d} {o.op:<30s} {where:<15s} {why}")
    if len(report.ops) > limit:
        lines.append(f"  ... {len(report.ops) - limit} more ops")
    return "\n".join(lines)


def to_json(report: EdgeTPUReport) -> dict:
    d = report.to_dict()
    d["ops"] = [asdict(o) for o in report.ops]
    return d
