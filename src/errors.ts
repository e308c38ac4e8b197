/**
 * Every error code thinkwhen throws, in one spelling (UPPER_SNAKE). A new code is added here, so that
 * callers can match codes with the compiler's help. Grouped by the part of src/ that throws it
 * ("shared": thrown by several).
 */
export type ErrorCode =
  // cli
  | 'GRADE_NO_FILE'
  | 'NO_ENTRY'
  | 'NO_GPU'
  | 'OUT_IS_INPUT'
  // engine
  | 'ADDON_MISSING'
  | 'BACKEND_LOAD_FAILED'
  | 'BAD_HOOK'
  | 'BAD_POSITION'
  | 'BAD_ROW'
  | 'BAD_TOKEN'
  | 'BAD_VECTOR'
  | 'BATCH_TOO_LARGE'
  | 'CONTEXT_FAILED'
  | 'CONTEXT_FREED'
  | 'CONTEXT_OVERFLOW'
  | 'DECODE_FAILED'
  | 'EMPTY_PROMPT'
  | 'HOOK_UNSUPPORTED'
  | 'KV_REMOVE_FAILED'
  | 'LOAD_FAILED'
  | 'MODEL_FREED'
  | 'MODEL_IN_USE'
  | 'NO_CHAT_TEMPLATE'
  | 'NO_FREE_SEQUENCE'
  | 'NO_WEIGHTS'
  | 'OFFSETS_UNAVAILABLE'
  | 'SEQUENCE_DISPOSED'
  | 'VECTOR_NOT_FINITE'
  // eval
  | 'BAD_SHARD'
  | 'BAD_SLICE'
  | 'DATASET_MALFORMED'
  | 'DATASET_NOT_CACHED'
  | 'DATASET_NOT_FOUND'
  | 'DATASET_UNKNOWN'
  | 'DOWNLOAD_FAILED'
  | 'JUDGE_BAD_MODEL'
  | 'JUDGE_FAILED'
  | 'JUDGE_UNAUTHORIZED'
  | 'JUDGE_UNREACHABLE'
  | 'MERGE_CONFIG_MISMATCH'
  | 'MERGE_DATASET_MISMATCH'
  | 'MERGE_NO_INPUTS'
  | 'MERGE_SELF'
  | 'NOT_A_FOLDER'
  | 'NOT_A_RUN_STORE'
  | 'REPORT_K_TOO_LARGE'
  | 'REPORT_NO_RUNS'
  | 'REPORT_ROLES'
  | 'RUN_CONFIG_MISMATCH'
  | 'RUN_DATASET_MISMATCH'
  | 'RUN_NOT_FOUND'
  | 'RUN_SHARD_MISMATCH'
  | 'UNKNOWN_GRADER'
  // gguf
  | 'BAD_CONTROL_VECTOR'
  | 'BAD_GGUF'
  | 'NOT_CONTROL_VECTOR'
  | 'NO_TENSOR'
  | 'TRUNCATED_GGUF'
  | 'UNSUPPORTED_TYPE'
  // llm
  | 'LLM_BAD_MODEL'
  | 'LLM_BAD_REQUEST'
  | 'LLM_FAILED'
  | 'LLM_NO_MODEL'
  | 'LLM_TIMEOUT'
  | 'LLM_UNAUTHORIZED'
  | 'LLM_UNREACHABLE'
  // organism
  | 'NO_GROUND_TRUTH'
  | 'NO_ORGANISM'
  | 'ORGANISM_MISSING'
  | 'ORGANISM_VOCAB'
  // shared
  | 'BAD_ARGUMENT'
  | 'BAD_SPEC'
  | 'EMPTY_BATCH'
  | 'LAYER_OUT_OF_RANGE'
  | 'MODEL_NOT_FOUND'
  | 'NOT_A_MODEL'
  | 'NOT_GGUF'
  | 'NOT_OUR_FILE'
  | 'TRACES_MALFORMED'
  | 'VECTOR_WIDTH'
  // taxonomy
  | 'ABORTED'
  | 'BAD_K'
  | 'BAD_LABEL'
  | 'BAD_LAYERS'
  | 'BAD_METRIC'
  | 'BAD_MODEL'
  | 'BAD_SAE'
  | 'BAD_STORE'
  | 'CAPTURE_INCOMPLETE'
  | 'CAPTURE_MISMATCH'
  | 'LENGTH_MISMATCH'
  | 'MISSING_LAYER'
  | 'NO_ACTIVATIONS'
  | 'NO_MEAN'
  | 'NO_METRIC'
  | 'NO_PRESET'
  | 'NO_SELECTION'
  | 'NO_SENTENCES'
  | 'NO_TAXONOMY'
  | 'NO_TRACES'
  | 'ROWS_OUT_OF_RANGE'
  | 'SAE_WORKER_FAILED'
  | 'SAFETENSORS_CORRUPT'
  | 'SAFETENSORS_DTYPE'
  | 'SAFETENSORS_MISSING'
  | 'SAFETENSORS_SHAPE'
  | 'TOO_FEW_SENTENCES'
  | 'WIDTH_MISMATCH'
  // traces
  | 'CONTEXT_TOO_LONG'
  | 'NO_QUESTIONS'
  | 'QUESTIONS_MALFORMED'
  | 'QUESTIONS_NOT_FOUND'
  | 'TRACES_MISMATCH'
  | 'TRACES_NOT_FOUND'
  // train
  | 'BAD_EXAMPLE'
  | 'NO_EXAMPLES'
  | 'NO_TARGETS'
  | 'OUT_OF_MEMORY'
  | 'UNSUPPORTED_MODEL'
  | 'WRONG_MODE';

/** An error a user can act on: what went wrong and how to fix it. The CLI prints both. */
export class ThinkwhenError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fix?: string,
  ) {
    super(fix ? `${message} (fix: ${fix})` : message);
    this.name = 'ThinkwhenError';
  }
}
