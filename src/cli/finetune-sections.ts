// The sections of `finetune --help`, in order, and the flags each lists. Not the flags themselves (finetune.ts).

export const FINETUNE_SECTIONS = [
  ['model', ['base_model', 'example', 'load_in_8bit', 'load_in_4bit', 'bnb_4bit_quant_type', 'bnb_4bit_use_double_quant', 'bnb_4bit_compute_dtype',
    'llm_int8_threshold', 'llm_int8_skip_modules', 'backend']],
  ['data', ['data_path', 'val_data_path', 'val_set_size', 'interleave_probs', 'prompt_template_name', 'cutoff_len', 'train_on_inputs', 'add_eos_token',
    'data_format', 'instruction_field', 'input_field', 'output_field', 'text_field', 'skip_empty_outputs', 'skip_bad_records', 'group_by_length', 'packing',
    'shuffle']],
  ['conversations', ['chat_template', 'messages_field', 'role_tag', 'content_tag', 'user_tag', 'assistant_tag', 'system_tag', 'system_field',
    'history_field', 'data_columns']],
  ['method', ['finetuning_type', 'full_finetune', 'freeze_trainable_layers', 'freeze_trainable_modules']],
  ['LoRA', ['lora_r', 'lora_alpha', 'lora_dropout', 'lora_target_modules', 'use_rslora', 'use_dora', 'modules_to_save', 'lora_init', 'loraplus_lr_ratio']],
  ['vocabulary', ['new_special_tokens']],
  ['training', ['batch_size', 'micro_batch_size', 'num_epochs', 'max_steps', 'learning_rate', 'warmup_steps', 'warmup_ratio', 'lr_scheduler',
    'weight_decay', 'max_grad_norm', 'gradient_checkpointing', 'activation_dtype', 'compute_dtype', 'eval_steps', 'seed', 'nproc_per_node']],
  ['checkpoints', ['save_steps', 'save_total_limit', 'load_best_model_at_end', 'resume_from_checkpoint']],
  ['output', ['output_dir', 'overwrite_output_dir', 'logging_steps', 'progress', 'wandb_project', 'wandb_run_name', 'wandb_watch', 'wandb_log_model']],
] as const;
