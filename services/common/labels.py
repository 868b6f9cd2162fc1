"""The Chinese label of every enum value, one spelling each (design.md §3 glossary).

Exports write these (gateway/exports.py), import templates list them as the allowed values
(services/common/import_template.py), and every import accepts them besides the English values
(each kind's label table in services/<service>/imports.py holds them among its synonyms), so a
sheet exported from the platform can be imported back as it is.
"""

from __future__ import annotations

STAGE = {"primary": "小学", "junior": "初中", "nine_year": "九年一贯制", "senior": "高中",
         "complete_secondary": "完全中学", "twelve_year": "十二年一贯制"}
LOCALITY = {"urban": "城区", "township": "镇区", "rural": "乡村"}
PAIRING_STATUS = {"proposed": "拟结对", "active": "进行中", "suspended": "已暂停", "ended": "已结束"}
ACTIVITY_KIND = {"teacher_training": "教师培训", "lesson_delivery": "送课到校", "joint_research": "联合教研",
                 "student_exchange": "学生交流", "cadre_shadowing": "干部跟岗", "resource_sharing": "资源共享",
                 "other": "其他"}
STAFF_ROLE = {"teacher": "教师", "principal": "校长", "vice_principal": "副校长", "middle_manager": "中层干部"}
SECTION = {"primary": "小学", "junior": "初中", "senior": "高中"}
BACKBONE_LEVEL = {"none": "无", "school": "校级骨干", "district": "区级骨干", "municipal": "市级骨干",
                  "special_grade": "特级教师"}
STAFF_STATUS = {"active": "在岗", "retired": "已退休", "left": "已调离"}
ROTATION_MODE = {"full_time": "全职交流", "part_time": "兼职交流", "subject_guidance": "学科指导"}
ROTATION_STATUS = {"planned": "计划中", "approved": "已批准", "active": "进行中", "completed": "已完成",
                   "withdrawn": "已撤回"}
