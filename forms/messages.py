"""Validation messages in Simplified Chinese (default) and English."""
from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "required": {"zh": "此项为必填项。", "en": "This field is required."},
    "unknown_field": {"zh": "表单中没有此字段。", "en": "This form has no such field."},
    "not_applicable": {"zh": "根据“{other}”的填写，此项不适用，请清空。",
                       "en": "This field does not apply given “{other}”; clear it."},
    "option_requires": {"zh": "“{field}”选择“{option}”时，此项必须为“是”。",
                        "en": "“{option}” as “{field}” needs yes here."},
    "differs_reason": {"zh": "“{field}”选择了“{chosen}”，与决定的“{decided}”不同，须填写理由。",
                       "en": "“{chosen}” as “{field}” differs from the decided “{decided}”: give a reason."},
    "read_only": {"zh": "此项由流程确定，不能修改。", "en": "This value is set by the process and cannot be changed."},
    "structure": {"zh": "数据格式不正确。", "en": "The value has the wrong structure."},
    "text": {"zh": "请输入文字。", "en": "Enter text."},
    "integer": {"zh": "请输入整数。", "en": "Enter a whole number."},
    "number": {"zh": "请输入数字。", "en": "Enter a number."},
    "decimals": {"zh": "最多保留 {decimals} 位小数。", "en": "Use at most {decimals} decimal places."},
    "bool": {"zh": "请选择“是”或“否”。", "en": "Choose yes or no."},
    "date": {"zh": "请输入有效日期（年-月-日）。", "en": "Enter a valid date (YYYY-MM-DD)."},
    "datetime": {"zh": "请输入有效的日期和时间。", "en": "Enter a valid date and time."},
    "min_value": {"zh": "不能小于 {min}。", "en": "Must be at least {min}."},
    "max_value": {"zh": "不能大于 {max}。", "en": "Must be at most {max}."},
    "min_date": {"zh": "不能早于 {min}。", "en": "Must not be before {min}."},
    "max_date": {"zh": "不能晚于 {max}。", "en": "Must not be after {max}."},
    "min_length": {"zh": "至少需要 {min_length} 个字符。", "en": "Enter at least {min_length} characters."},
    "max_length": {"zh": "不能超过 {max_length} 个字符。", "en": "Enter at most {max_length} characters."},
    "pattern": {"zh": "格式不正确。", "en": "The format is not valid."},
    "option": {"zh": "“{value}”不是可选项。", "en": "“{value}” is not one of the choices."},
    "duplicate_option": {"zh": "“{value}”重复选择。", "en": "“{value}” is chosen twice."},
    "min_items": {"zh": "至少选择或填写 {min} 项。", "en": "Give at least {min}."},
    "max_items": {"zh": "最多选择或填写 {max} 项。", "en": "Give at most {max}."},
    "evidence": {"zh": "证据引用无效（需要 sha256、文件名和大小）。",
                 "en": "Invalid evidence reference (needs sha256, filename and size)."},
    "evidence_sha256": {"zh": "证据的 sha256 必须是 64 位十六进制数。",
                        "en": "An evidence sha256 must be 64 hexadecimal digits."},
    "check_result": {"zh": "请为该条款选择检查结果。", "en": "Choose a result for this clause."},
    "check_result_invalid": {"zh": "检查结果只能是符合、不符合或不适用。",
                             "en": "The result must be compliant, non-compliant or not applicable."},
    "check_note": {"zh": "不符合的条款必须填写问题说明。", "en": "A non-compliant clause needs a note."},
    "unknown_clause": {"zh": "检查表中没有此条款。", "en": "The checklist has no such clause."},
    "unknown_form": {"zh": "表单“{form_id}”不存在。", "en": "There is no form “{form_id}”."},
}


def message(code: str, lang: str = "zh", **params) -> str:
    entry = MESSAGES[code]
    return entry.get(lang, entry["zh"]).format(**params)
