//! The attributes each ONNX operator's spec defines (any opset), with the
//! kind of value of the newest version: what a `[[lane]]` patch may set on a
//! node. A patch is checked against this table at load, so a misspelt
//! attribute (which every lowering would silently ignore) or a value of the
//! wrong kind is bad input naming the key, not a lane that quietly agrees.
//!
//! Generated (onnx 1.19.1) with the runtimes' venv:
//! `onnx.defs.get_all_schemas_with_history()`, default domain, attribute
//! names unioned over versions, kind as in `graph::Attr::kind`.

/// `(op, [(attribute, kind)])`, sorted by op.
pub const OP_ATTRS: &[(&str, &[(&str, &str)])] = &[
    ("Abs", &[("consumed_inputs", "ints")]),
    ("Acos", &[]),
    ("Acosh", &[]),
    (
        "Add",
        &[
            ("axis", "int"),
            ("broadcast", "int"),
            ("consumed_inputs", "ints"),
        ],
    ),
    ("AffineGrid", &[("align_corners", "int")]),
    ("And", &[("axis", "int"), ("broadcast", "int")]),
    (
        "ArgMax",
        &[
            ("axis", "int"),
            ("keepdims", "int"),
            ("select_last_index", "int"),
        ],
    ),
    (
        "ArgMin",
        &[
            ("axis", "int"),
            ("keepdims", "int"),
            ("select_last_index", "int"),
        ],
    ),
    ("Asin", &[]),
    ("Asinh", &[]),
    ("Atan", &[]),
    ("Atanh", &[]),
    (
        "Attention",
        &[
            ("is_causal", "int"),
            ("kv_num_heads", "int"),
            ("q_num_heads", "int"),
            ("qk_matmul_output_mode", "int"),
            ("scale", "float"),
            ("softcap", "float"),
            ("softmax_precision", "int"),
        ],
    ),
    (
        "AveragePool",
        &[
            ("auto_pad", "string"),
            ("ceil_mode", "int"),
            ("count_include_pad", "int"),
            ("dilations", "ints"),
            ("kernel_shape", "ints"),
            ("pads", "ints"),
            ("strides", "ints"),
        ],
    ),
    (
        "BatchNormalization",
        &[
            ("consumed_inputs", "ints"),
            ("epsilon", "float"),
            ("is_test", "int"),
            ("momentum", "float"),
            ("spatial", "int"),
            ("training_mode", "int"),
        ],
    ),
    ("Bernoulli", &[("dtype", "int"), ("seed", "float")]),
    ("BitShift", &[("direction", "string")]),
    ("BitwiseAnd", &[]),
    ("BitwiseNot", &[]),
    ("BitwiseOr", &[]),
    ("BitwiseXor", &[]),
    (
        "BlackmanWindow",
        &[("output_datatype", "int"), ("periodic", "int")],
    ),
    (
        "Cast",
        &[("round_mode", "string"), ("saturate", "int"), ("to", "int")],
    ),
    ("CastLike", &[("round_mode", "string"), ("saturate", "int")]),
    ("Ceil", &[("consumed_inputs", "ints")]),
    ("Celu", &[("alpha", "float")]),
    ("CenterCropPad", &[("axes", "ints")]),
    (
        "Clip",
        &[
            ("consumed_inputs", "ints"),
            ("max", "float"),
            ("min", "float"),
        ],
    ),
    (
        "Col2Im",
        &[("dilations", "ints"), ("pads", "ints"), ("strides", "ints")],
    ),
    ("Compress", &[("axis", "int")]),
    ("Concat", &[("axis", "int")]),
    (
        "ConcatFromSequence",
        &[("axis", "int"), ("new_axis", "int")],
    ),
    (
        "Constant",
        &[
            ("sparse_value", "sparse tensor"),
            ("value", "tensor"),
            ("value_float", "float"),
            ("value_floats", "floats"),
            ("value_int", "int"),
            ("value_ints", "ints"),
            ("value_string", "string"),
            ("value_strings", "strings"),
        ],
    ),
    ("ConstantOfShape", &[("value", "tensor")]),
    (
        "Conv",
        &[
            ("auto_pad", "string"),
            ("dilations", "ints"),
            ("group", "int"),
            ("kernel_shape", "ints"),
            ("pads", "ints"),
            ("strides", "ints"),
        ],
    ),
    (
        "ConvInteger",
        &[
            ("auto_pad", "string"),
            ("dilations", "ints"),
            ("group", "int"),
            ("kernel_shape", "ints"),
            ("pads", "ints"),
            ("strides", "ints"),
        ],
    ),
    (
        "ConvTranspose",
        &[
            ("auto_pad", "string"),
            ("dilations", "ints"),
            ("group", "int"),
            ("kernel_shape", "ints"),
            ("output_padding", "ints"),
            ("output_shape", "ints"),
            ("pads", "ints"),
            ("strides", "ints"),
        ],
    ),
    ("Cos", &[]),
    ("Cosh", &[]),
    ("CumSum", &[("exclusive", "int"), ("reverse", "int")]),
    (
        "DFT",
        &[("axis", "int"), ("inverse", "int"), ("onesided", "int")],
    ),
    (
        "DeformConv",
        &[
            ("dilations", "ints"),
            ("group", "int"),
            ("kernel_shape", "ints"),
            ("offset_group", "int"),
            ("pads", "ints"),
            ("strides", "ints"),
        ],
    ),
    ("DepthToSpace", &[("blocksize", "int"), ("mode", "string")]),
    (
        "DequantizeLinear",
        &[
            ("axis", "int"),
            ("block_size", "int"),
            ("output_dtype", "int"),
        ],
    ),
    ("Det", &[]),
    (
        "Div",
        &[
            ("axis", "int"),
            ("broadcast", "int"),
            ("consumed_inputs", "ints"),
        ],
    ),
    (
        "Dropout",
        &[
            ("consumed_inputs", "ints"),
            ("is_test", "int"),
            ("ratio", "float"),
            ("seed", "int"),
        ],
    ),
    ("DynamicQuantizeLinear", &[]),
    ("Einsum", &[("equation", "string")]),
    ("Elu", &[("alpha", "float"), ("consumed_inputs", "ints")]),
    ("Equal", &[("axis", "int"), ("broadcast", "int")]),
    ("Erf", &[]),
    ("Exp", &[("consumed_inputs", "ints")]),
    ("Expand", &[]),
    ("EyeLike", &[("dtype", "int"), ("k", "int")]),
    ("Flatten", &[("axis", "int")]),
    ("Floor", &[("consumed_inputs", "ints")]),
    (
        "GRU",
        &[
            ("activation_alpha", "floats"),
            ("activation_beta", "floats"),
            ("activations", "strings"),
            ("clip", "float"),
            ("direction", "string"),
            ("hidden_size", "int"),
            ("layout", "int"),
            ("linear_before_reset", "int"),
            ("output_sequence", "int"),
        ],
    ),
    ("Gather", &[("axis", "int")]),
    ("GatherElements", &[("axis", "int")]),
    ("GatherND", &[("batch_dims", "int")]),
    ("Gelu", &[("approximate", "string")]),
    (
        "Gemm",
        &[
            ("alpha", "float"),
            ("beta", "float"),
            ("broadcast", "int"),
            ("transA", "int"),
            ("transB", "int"),
        ],
    ),
    ("GlobalAveragePool", &[]),
    ("GlobalLpPool", &[("p", "int")]),
    ("GlobalMaxPool", &[]),
    ("Greater", &[("axis", "int"), ("broadcast", "int")]),
    ("GreaterOrEqual", &[]),
    (
        "GridSample",
        &[
            ("align_corners", "int"),
            ("mode", "string"),
            ("padding_mode", "string"),
        ],
    ),
    (
        "GroupNormalization",
        &[
            ("epsilon", "float"),
            ("num_groups", "int"),
            ("stash_type", "int"),
        ],
    ),
    (
        "HammingWindow",
        &[("output_datatype", "int"), ("periodic", "int")],
    ),
    (
        "HannWindow",
        &[("output_datatype", "int"), ("periodic", "int")],
    ),
    (
        "HardSigmoid",
        &[
            ("alpha", "float"),
            ("beta", "float"),
            ("consumed_inputs", "ints"),
        ],
    ),
    ("HardSwish", &[]),
    ("Hardmax", &[("axis", "int")]),
    ("Identity", &[]),
    ("If", &[("else_branch", "graph"), ("then_branch", "graph")]),
    ("ImageDecoder", &[("pixel_format", "string")]),
    (
        "InstanceNormalization",
        &[("consumed_inputs", "ints"), ("epsilon", "float")],
    ),
    (
        "IsInf",
        &[("detect_negative", "int"), ("detect_positive", "int")],
    ),
    ("IsNaN", &[]),
    (
        "LRN",
        &[
            ("alpha", "float"),
            ("beta", "float"),
            ("bias", "float"),
            ("size", "int"),
        ],
    ),
    (
        "LSTM",
        &[
            ("activation_alpha", "floats"),
            ("activation_beta", "floats"),
            ("activations", "strings"),
            ("clip", "float"),
            ("direction", "string"),
            ("hidden_size", "int"),
            ("input_forget", "int"),
            ("layout", "int"),
            ("output_sequence", "int"),
        ],
    ),
    (
        "LayerNormalization",
        &[("axis", "int"), ("epsilon", "float"), ("stash_type", "int")],
    ),
    (
        "LeakyRelu",
        &[("alpha", "float"), ("consumed_inputs", "ints")],
    ),
    ("Less", &[("axis", "int"), ("broadcast", "int")]),
    ("LessOrEqual", &[]),
    ("Log", &[("consumed_inputs", "ints")]),
    ("LogSoftmax", &[("axis", "int")]),
    ("Loop", &[("body", "graph")]),
    ("LpNormalization", &[("axis", "int"), ("p", "int")]),
    (
        "LpPool",
        &[
            ("auto_pad", "string"),
            ("ceil_mode", "int"),
            ("dilations", "ints"),
            ("kernel_shape", "ints"),
            ("p", "int"),
            ("pads", "ints"),
            ("strides", "ints"),
        ],
    ),
    ("MatMul", &[]),
    ("MatMulInteger", &[]),
    ("Max", &[("consumed_inputs", "ints")]),
    (
        "MaxPool",
        &[
            ("auto_pad", "string"),
            ("ceil_mode", "int"),
            ("dilations", "ints"),
            ("kernel_shape", "ints"),
            ("pads", "ints"),
            ("storage_order", "int"),
            ("strides", "ints"),
        ],
    ),
    (
        "MaxRoiPool",
        &[("pooled_shape", "ints"), ("spatial_scale", "float")],
    ),
    (
        "MaxUnpool",
        &[
            ("kernel_shape", "ints"),
            ("pads", "ints"),
            ("strides", "ints"),
        ],
    ),
    ("Mean", &[("consumed_inputs", "ints")]),
    ("MeanVarianceNormalization", &[("axes", "ints")]),
    ("MelWeightMatrix", &[("output_datatype", "int")]),
    ("Min", &[("consumed_inputs", "ints")]),
    ("Mish", &[]),
    ("Mod", &[("fmod", "int")]),
    (
        "Mul",
        &[
            ("axis", "int"),
            ("broadcast", "int"),
            ("consumed_inputs", "ints"),
        ],
    ),
    (
        "Multinomial",
        &[("dtype", "int"), ("sample_size", "int"), ("seed", "float")],
    ),
    ("Neg", &[("consumed_inputs", "ints")]),
    (
        "NegativeLogLikelihoodLoss",
        &[("ignore_index", "int"), ("reduction", "string")],
    ),
    ("NonMaxSuppression", &[("center_point_box", "int")]),
    ("NonZero", &[]),
    ("Not", &[]),
    ("OneHot", &[("axis", "int")]),
    ("Optional", &[("type", "type proto")]),
    ("OptionalGetElement", &[]),
    ("OptionalHasElement", &[]),
    ("Or", &[("axis", "int"), ("broadcast", "int")]),
    ("PRelu", &[("consumed_inputs", "ints")]),
    (
        "Pad",
        &[
            ("mode", "string"),
            ("paddings", "ints"),
            ("pads", "ints"),
            ("value", "float"),
        ],
    ),
    ("Pow", &[("axis", "int"), ("broadcast", "int")]),
    (
        "QLinearConv",
        &[
            ("auto_pad", "string"),
            ("dilations", "ints"),
            ("group", "int"),
            ("kernel_shape", "ints"),
            ("pads", "ints"),
            ("strides", "ints"),
        ],
    ),
    ("QLinearMatMul", &[]),
    (
        "QuantizeLinear",
        &[
            ("axis", "int"),
            ("block_size", "int"),
            ("output_dtype", "int"),
            ("precision", "int"),
            ("saturate", "int"),
        ],
    ),
    (
        "RMSNormalization",
        &[("axis", "int"), ("epsilon", "float"), ("stash_type", "int")],
    ),
    (
        "RNN",
        &[
            ("activation_alpha", "floats"),
            ("activation_beta", "floats"),
            ("activations", "strings"),
            ("clip", "float"),
            ("direction", "string"),
            ("hidden_size", "int"),
            ("layout", "int"),
            ("output_sequence", "int"),
        ],
    ),
    (
        "RandomNormal",
        &[
            ("dtype", "int"),
            ("mean", "float"),
            ("scale", "float"),
            ("seed", "float"),
            ("shape", "ints"),
        ],
    ),
    (
        "RandomNormalLike",
        &[
            ("dtype", "int"),
            ("mean", "float"),
            ("scale", "float"),
            ("seed", "float"),
        ],
    ),
    (
        "RandomUniform",
        &[
            ("dtype", "int"),
            ("high", "float"),
            ("low", "float"),
            ("seed", "float"),
            ("shape", "ints"),
        ],
    ),
    (
        "RandomUniformLike",
        &[
            ("dtype", "int"),
            ("high", "float"),
            ("low", "float"),
            ("seed", "float"),
        ],
    ),
    ("Range", &[]),
    ("Reciprocal", &[("consumed_inputs", "ints")]),
    (
        "ReduceL1",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    (
        "ReduceL2",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    (
        "ReduceLogSum",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    (
        "ReduceLogSumExp",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    (
        "ReduceMax",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    (
        "ReduceMean",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    (
        "ReduceMin",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    (
        "ReduceProd",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    (
        "ReduceSum",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    (
        "ReduceSumSquare",
        &[
            ("axes", "ints"),
            ("keepdims", "int"),
            ("noop_with_empty_axes", "int"),
        ],
    ),
    ("RegexFullMatch", &[("pattern", "string")]),
    ("Relu", &[("consumed_inputs", "ints")]),
    (
        "Reshape",
        &[
            ("allowzero", "int"),
            ("consumed_inputs", "ints"),
            ("shape", "ints"),
        ],
    ),
    (
        "Resize",
        &[
            ("antialias", "int"),
            ("axes", "ints"),
            ("coordinate_transformation_mode", "string"),
            ("cubic_coeff_a", "float"),
            ("exclude_outside", "int"),
            ("extrapolation_value", "float"),
            ("keep_aspect_ratio_policy", "string"),
            ("mode", "string"),
            ("nearest_mode", "string"),
        ],
    ),
    (
        "ReverseSequence",
        &[("batch_axis", "int"), ("time_axis", "int")],
    ),
    (
        "RoiAlign",
        &[
            ("coordinate_transformation_mode", "string"),
            ("mode", "string"),
            ("output_height", "int"),
            ("output_width", "int"),
            ("sampling_ratio", "int"),
            ("spatial_scale", "float"),
        ],
    ),
    (
        "RotaryEmbedding",
        &[
            ("interleaved", "int"),
            ("num_heads", "int"),
            ("rotary_embedding_dim", "int"),
        ],
    ),
    ("Round", &[]),
    ("STFT", &[("onesided", "int")]),
    (
        "Scan",
        &[
            ("body", "graph"),
            ("directions", "ints"),
            ("num_scan_inputs", "int"),
            ("scan_input_axes", "ints"),
            ("scan_input_directions", "ints"),
            ("scan_output_axes", "ints"),
            ("scan_output_directions", "ints"),
        ],
    ),
    ("Scatter", &[("axis", "int")]),
    (
        "ScatterElements",
        &[("axis", "int"), ("reduction", "string")],
    ),
    ("ScatterND", &[("reduction", "string")]),
    (
        "Selu",
        &[
            ("alpha", "float"),
            ("consumed_inputs", "ints"),
            ("gamma", "float"),
        ],
    ),
    ("SequenceAt", &[]),
    ("SequenceConstruct", &[]),
    ("SequenceEmpty", &[("dtype", "int")]),
    ("SequenceErase", &[]),
    ("SequenceInsert", &[]),
    ("SequenceLength", &[]),
    ("SequenceMap", &[("body", "graph")]),
    ("Shape", &[("end", "int"), ("start", "int")]),
    ("Shrink", &[("bias", "float"), ("lambd", "float")]),
    ("Sigmoid", &[("consumed_inputs", "ints")]),
    ("Sign", &[]),
    ("Sin", &[]),
    ("Sinh", &[]),
    ("Size", &[]),
    (
        "Slice",
        &[("axes", "ints"), ("ends", "ints"), ("starts", "ints")],
    ),
    ("Softmax", &[("axis", "int")]),
    (
        "SoftmaxCrossEntropyLoss",
        &[("ignore_index", "int"), ("reduction", "string")],
    ),
    ("Softplus", &[]),
    ("Softsign", &[]),
    ("SpaceToDepth", &[("blocksize", "int")]),
    (
        "Split",
        &[("axis", "int"), ("num_outputs", "int"), ("split", "ints")],
    ),
    ("SplitToSequence", &[("axis", "int"), ("keepdims", "int")]),
    ("Sqrt", &[("consumed_inputs", "ints")]),
    ("Squeeze", &[("axes", "ints")]),
    ("StringConcat", &[]),
    (
        "StringNormalizer",
        &[
            ("case_change_action", "string"),
            ("is_case_sensitive", "int"),
            ("locale", "string"),
            ("stopwords", "strings"),
        ],
    ),
    (
        "StringSplit",
        &[("delimiter", "string"), ("maxsplit", "int")],
    ),
    (
        "Sub",
        &[
            ("axis", "int"),
            ("broadcast", "int"),
            ("consumed_inputs", "ints"),
        ],
    ),
    ("Sum", &[("consumed_inputs", "ints")]),
    ("Swish", &[("alpha", "float")]),
    ("Tan", &[]),
    ("Tanh", &[("consumed_inputs", "ints")]),
    ("TensorScatter", &[("axis", "int"), ("mode", "string")]),
    (
        "TfIdfVectorizer",
        &[
            ("max_gram_length", "int"),
            ("max_skip_count", "int"),
            ("min_gram_length", "int"),
            ("mode", "string"),
            ("ngram_counts", "ints"),
            ("ngram_indexes", "ints"),
            ("pool_int64s", "ints"),
            ("pool_strings", "strings"),
            ("weights", "floats"),
        ],
    ),
    ("ThresholdedRelu", &[("alpha", "float")]),
    ("Tile", &[]),
    (
        "TopK",
        &[
            ("axis", "int"),
            ("k", "int"),
            ("largest", "int"),
            ("sorted", "int"),
        ],
    ),
    ("Transpose", &[("perm", "ints")]),
    ("Trilu", &[("upper", "int")]),
    ("Unique", &[("axis", "int"), ("sorted", "int")]),
    ("Unsqueeze", &[("axes", "ints")]),
    (
        "Upsample",
        &[
            ("height_scale", "float"),
            ("mode", "string"),
            ("scales", "floats"),
            ("width_scale", "float"),
        ],
    ),
    ("Where", &[]),
    ("Xor", &[("axis", "int"), ("broadcast", "int")]),
];

/// The attributes the spec of `op` defines; `None` for an op not in the table.
pub fn spec_attrs(op: &str) -> Option<&'static [(&'static str, &'static str)]> {
    OP_ATTRS
        .binary_search_by(|(o, _)| o.cmp(&op))
        .ok()
        .map(|i| OP_ATTRS[i].1)
}
