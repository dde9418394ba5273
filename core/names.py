"""People's names as a patient hears them: salutations and staff titles (DOMAIN.md §2, issue 14 items 6 and 8).

* A Chinese name starts with a surname of one character (王) or two (欧阳, 司马,
  诸葛...): 欧阳娜 is 欧阳女士, never 欧奶奶.
* A name without a Han surname (阿依古丽·买买提, 买买提: Uyghur, Tibetan, Mongolian
  names written in characters) has no part to cut off: the full name with 女士 /
  先生, never a single syllable.
* A minor (under ``minor_under``, default 18) is called through a parent or
  guardian: the coordinator asks for 高佳怡的家长, not 高女士.
* Staff keep their title wherever a patient hears them: 陈医生 / Dr Chen.

English scripts spell a Chinese surname in pinyin (王 → Wang, 欧阳 → Ouyang) from the
table below (surname readings, which differ from the common reading: 单 Shan,
曾 Zeng, 解 Xie); a surname not in the table is written as it is.
"""

from __future__ import annotations

import re
from typing import Literal

# Two-character surnames (复姓), the common ones of the Hundred Family Surnames and a few more.
# Not listed on purpose: 单于 (单 + given name 于 is far more common).
COMPOUND_SURNAMES: tuple[str, ...] = (
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "夏侯", "尉迟", "公孙", "慕容", "长孙", "宇文",
    "司徒", "令狐", "端木", "万俟", "闻人", "赫连", "公羊", "澹台", "公冶", "宗政", "濮阳", "淳于",
    "太叔", "申屠", "仲孙", "轩辕", "钟离", "鲜于", "闾丘", "司空", "亓官", "司寇", "子车", "颛孙",
    "巫马", "公西", "漆雕", "乐正", "壤驷", "公良", "拓跋", "夹谷", "宰父", "谷梁", "段干", "百里",
    "东郭", "南门", "呼延", "归海", "羊舌", "微生", "梁丘", "左丘", "东门", "西门", "南宫", "第五",
)

# Single-character surnames: the Hundred Family Surnames and common modern ones.
SINGLE_SURNAMES: frozenset[str] = frozenset(
    "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛奚范彭郎"
    "鲁韦昌马苗凤花方俞任袁柳酆鲍史唐费廉岑薛雷贺倪汤滕殷罗毕郝邬安常乐于时傅皮卞齐康伍余元卜顾孟平黄"
    "和穆萧尹姚邵湛汪祁毛禹狄米贝明臧计伏成戴谈宋茅庞熊纪舒屈项祝董梁杜阮蓝闵席季麻强贾路娄危江童颜郭"
    "梅盛林刁钟徐邱骆高夏蔡田樊胡凌霍虞万支柯昝管卢莫经房裘缪干解应宗丁宣贲邓郁单杭洪包诸左石崔吉钮龚"
    "程嵇邢滑裴陆荣翁荀羊於惠甄曲家封芮羿储靳汲邴糜松井段富巫乌焦巴弓牧隗山谷车侯宓蓬全郗班仰秋仲伊宫"
    "宁仇栾暴甘钭厉戎祖武符刘景詹束龙叶幸司韶郜黎蓟薄印宿白怀蒲邰从鄂索咸籍赖卓蔺屠蒙池乔阴胥能苍双闻"
    "莘党翟谭贡劳逄姬申扶堵冉宰郦雍桑桂濮牛寿通边扈燕冀郏浦尚农温别庄晏柴瞿阎充慕连茹习宦艾鱼容向古易"
    "慎戈廖庾终暨居衡步都耿满弘匡国文寇广禄阙东欧殳沃利蔚越夔隆师巩厍聂晁勾敖融冷訾辛阚那简饶空曾毋沙"
    "乜养鞠须丰巢关蒯相查后荆红游竺权逯盖益桓公仉督岳帅缑亢况郈有琴商牟佘佴伯赏墨哈谯笪年爱阳佟言福"
    "闫覃肖粟练揭"
)

# Surname readings for English scripts (the reading as a surname, which may differ from the usual one).
SURNAME_PINYIN: dict[str, str] = {
    "欧阳": "Ouyang", "司马": "Sima", "诸葛": "Zhuge", "上官": "Shangguan", "东方": "Dongfang",
    "皇甫": "Huangfu", "夏侯": "Xiahou", "尉迟": "Yuchi", "公孙": "Gongsun", "慕容": "Murong",
    "长孙": "Zhangsun", "宇文": "Yuwen", "司徒": "Situ", "令狐": "Linghu", "端木": "Duanmu",
    "万俟": "Moqi", "轩辕": "Xuanyuan", "钟离": "Zhongli", "司空": "Sikong", "南宫": "Nangong",
    "闻人": "Wenren", "赫连": "Helian", "公羊": "Gongyang", "澹台": "Tantai", "公冶": "Gongye",
    "宗政": "Zongzheng", "濮阳": "Puyang", "淳于": "Chunyu", "太叔": "Taishu", "申屠": "Shentu",
    "仲孙": "Zhongsun", "鲜于": "Xianyu", "闾丘": "Lyuqiu", "亓官": "Qiguan", "司寇": "Sikou",
    "子车": "Ziju", "颛孙": "Zhuansun", "巫马": "Wuma", "公西": "Gongxi", "漆雕": "Qidiao",
    "乐正": "Yuezheng", "壤驷": "Rangsi", "公良": "Gongliang", "拓跋": "Tuoba", "夹谷": "Jiagu",
    "宰父": "Zaifu", "谷梁": "Guliang", "段干": "Duangan", "百里": "Baili", "东郭": "Dongguo",
    "南门": "Nanmen", "呼延": "Huyan", "归海": "Guihai", "羊舌": "Yangshe", "微生": "Weisheng",
    "梁丘": "Liangqiu", "左丘": "Zuoqiu", "东门": "Dongmen", "西门": "Ximen", "第五": "Diwu",
    "王": "Wang", "李": "Li", "张": "Zhang", "刘": "Liu", "陈": "Chen", "杨": "Yang", "黄": "Huang",
    "赵": "Zhao", "吴": "Wu", "周": "Zhou", "徐": "Xu", "孙": "Sun", "马": "Ma", "朱": "Zhu", "胡": "Hu",
    "郭": "Guo", "何": "He", "高": "Gao", "林": "Lin", "罗": "Luo", "郑": "Zheng", "梁": "Liang",
    "谢": "Xie", "宋": "Song", "唐": "Tang", "许": "Xu", "韩": "Han", "冯": "Feng", "邓": "Deng",
    "曹": "Cao", "彭": "Peng", "曾": "Zeng", "肖": "Xiao", "田": "Tian", "董": "Dong", "袁": "Yuan",
    "潘": "Pan", "于": "Yu", "蒋": "Jiang", "蔡": "Cai", "余": "Yu", "杜": "Du", "叶": "Ye", "程": "Cheng",
    "苏": "Su", "魏": "Wei", "吕": "Lyu", "丁": "Ding", "任": "Ren", "沈": "Shen", "姚": "Yao", "卢": "Lu",
    "姜": "Jiang", "崔": "Cui", "钟": "Zhong", "谭": "Tan", "陆": "Lu", "汪": "Wang", "范": "Fan",
    "金": "Jin", "石": "Shi", "廖": "Liao", "贾": "Jia", "夏": "Xia", "韦": "Wei", "付": "Fu", "傅": "Fu",
    "方": "Fang", "白": "Bai", "邹": "Zou", "孟": "Meng", "熊": "Xiong", "秦": "Qin", "邱": "Qiu",
    "江": "Jiang", "尹": "Yin", "薛": "Xue", "闫": "Yan", "阎": "Yan", "段": "Duan", "雷": "Lei",
    "侯": "Hou", "龙": "Long", "史": "Shi", "陶": "Tao", "黎": "Li", "贺": "He", "顾": "Gu", "毛": "Mao",
    "郝": "Hao", "龚": "Gong", "邵": "Shao", "万": "Wan", "钱": "Qian", "严": "Yan", "覃": "Qin",
    "武": "Wu", "戴": "Dai", "莫": "Mo", "孔": "Kong", "向": "Xiang", "汤": "Tang", "常": "Chang",
    "温": "Wen", "康": "Kang", "施": "Shi", "文": "Wen", "牛": "Niu", "樊": "Fan", "葛": "Ge", "邢": "Xing",
    "安": "An", "齐": "Qi", "易": "Yi", "乔": "Qiao", "伍": "Wu", "庞": "Pang", "颜": "Yan", "倪": "Ni",
    "庄": "Zhuang", "聂": "Nie", "章": "Zhang", "鲁": "Lu", "岳": "Yue", "翟": "Zhai", "殷": "Yin",
    "詹": "Zhan", "申": "Shen", "欧": "Ou", "耿": "Geng", "关": "Guan", "兰": "Lan", "焦": "Jiao",
    "俞": "Yu", "左": "Zuo", "柳": "Liu", "甘": "Gan", "祝": "Zhu", "包": "Bao", "宁": "Ning",
    "尚": "Shang", "符": "Fu", "舒": "Shu", "阮": "Ruan", "柯": "Ke", "纪": "Ji", "梅": "Mei", "童": "Tong",
    "凌": "Ling", "毕": "Bi", "单": "Shan", "季": "Ji", "裴": "Pei", "霍": "Huo", "涂": "Tu", "成": "Cheng",
    "苗": "Miao", "谷": "Gu", "盛": "Sheng", "曲": "Qu", "翁": "Weng", "冉": "Ran", "骆": "Luo",
    "蓝": "Lan", "路": "Lu", "游": "You", "辛": "Xin", "靳": "Jin", "管": "Guan", "柴": "Chai", "蒙": "Meng",
    "鲍": "Bao", "华": "Hua", "喻": "Yu", "祁": "Qi", "蒲": "Pu", "房": "Fang", "滕": "Teng", "屈": "Qu",
    "饶": "Rao", "解": "Xie", "牟": "Mou", "艾": "Ai", "尤": "You", "阳": "Yang", "时": "Shi", "穆": "Mu",
    "农": "Nong", "司": "Si", "卓": "Zhuo", "古": "Gu", "吉": "Ji", "缪": "Miao", "简": "Jian", "车": "Che",
    "项": "Xiang", "连": "Lian", "芦": "Lu", "麦": "Mai", "褚": "Chu", "娄": "Lou", "窦": "Dou", "戚": "Qi",
    "岑": "Cen", "景": "Jing", "党": "Dang", "宫": "Gong", "费": "Fei", "卜": "Bu", "冷": "Leng",
    "晏": "Yan", "席": "Xi", "卫": "Wei", "米": "Mi", "柏": "Bai", "宗": "Zong", "瞿": "Qu", "桂": "Gui",
    "全": "Quan", "佟": "Tong", "应": "Ying", "臧": "Zang", "闵": "Min", "苟": "Gou", "邬": "Wu",
    "边": "Bian", "卞": "Bian", "姬": "Ji", "师": "Shi", "和": "He", "仇": "Qiu", "栾": "Luan", "隋": "Sui",
    "商": "Shang", "刁": "Diao", "沙": "Sha", "荣": "Rong", "巫": "Wu", "寇": "Kou", "桑": "Sang",
    "郎": "Lang", "甄": "Zhen", "丛": "Cong", "仲": "Zhong", "虞": "Yu", "敖": "Ao", "巩": "Gong",
    "明": "Ming", "佘": "She", "池": "Chi", "查": "Zha", "麻": "Ma", "苑": "Yuan", "迟": "Chi", "邝": "Kuang",
    "区": "Ou", "朴": "Piao", "乐": "Yue", "粟": "Su", "练": "Lian", "揭": "Jie",
}

# Latin, fullwidth and Japanese middle dots separate the parts of transliterated names.
_DOTS = re.compile(r"[·・•．.\u2027\u00b7\u30fb]")
_HAN = re.compile(r"^[\u3400-\u9fff]+$")

Gender = Literal["F", "M", "U"]


def is_han(text: str) -> bool:
    return bool(_HAN.match(text))


def split_han_name(name: str) -> tuple[str, str] | None:
    """(surname, given name) of a Chinese name, or ``None`` when it does not start with a Han surname.

    A compound surname wins when a given name follows it (欧阳娜 → 欧阳, 娜); a
    name of two characters always has a one-character surname (欧阳 → 欧, 阳).
    """
    name = name.strip()
    if not is_han(name) or len(name) < 2:
        return None
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    if name[0] in SINGLE_SURNAMES:
        return name[0], name[1:]
    return None


def surname_latin(surname: str) -> str:
    """A Chinese surname as an English script writes it (pinyin), or the surname itself."""
    return SURNAME_PINYIN.get(surname, surname)


def age_band(age: int | None, bands: dict[str, int]) -> str:
    """child (under ``child_under``), elderly (from ``elderly_from``), else adult; unknown age: adult."""
    if age is None:
        return "adult"
    if age < bands.get("child_under", 14):
        return "child"
    if age >= bands.get("elderly_from", 60):
        return "elderly"
    return "adult"


def is_minor(age: int | None, bands: dict[str, int]) -> bool:
    """Under ``minor_under`` (default 18): the call goes to a parent or guardian."""
    return age is not None and age < bands.get("minor_under", 18)


def salutation(name: str, gender: Gender, age: int | None, locale: str, bands: dict[str, int]) -> str:
    """How the coordinator addresses the person who should answer the phone.

    zh_CN: 王奶奶 / 李先生 / 欧阳女士 / 阿依古丽·买买提女士 / 高佳怡的家长;
    en: Ms Wang / Mr Li / Ms Ouyang / the parent or guardian of 高佳怡.
    """
    name = " ".join(name.split())
    zh = locale == "zh_CN"
    if is_minor(age, bands):
        return f"{name}的家长" if zh else f"the parent or guardian of {name}"
    parts = split_han_name(name)
    if parts is not None:
        surname = parts[0]
        if zh:
            if age_band(age, bands) == "elderly":
                return {"F": f"{surname}奶奶", "M": f"{surname}爷爷"}.get(gender, name)
            return {"F": f"{surname}女士", "M": f"{surname}先生"}.get(gender, name)
        return {"F": f"Ms {surname_latin(surname)}", "M": f"Mr {surname_latin(surname)}"}.get(gender, name)
    if _DOTS.search(name) or is_han(name) or " " not in name:
        # No surname to cut off (阿依古丽·买买提, 买买提, a single-word name): the whole name.
        if zh:
            return {"F": f"{name}女士", "M": f"{name}先生"}.get(gender, name)
        return {"F": f"Ms {name}", "M": f"Mr {name}"}.get(gender, name)
    surname = name.split()[-1]  # "Emily Chen": given name first, surname last
    if zh:
        return {"F": f"{surname}女士", "M": f"{surname}先生"}.get(gender, name)
    return {"F": f"Ms {surname}", "M": f"Mr {surname}"}.get(gender, name)


_TITLED = ("医生", "大夫", "主任", "院长", "护士", "医师")


def doctor_title(name: str | None, locale: str) -> str | None:
    """A doctor as a patient hears them: 陈志远 → 陈医生 / Dr Chen; an already titled name is kept."""
    if not name or not name.strip():
        return None
    name = " ".join(name.split())
    zh = locale == "zh_CN"
    if name.endswith(_TITLED) or name.lower().startswith(("dr ", "dr.")):
        if zh or not is_han(name):
            return name
        name = next(name[: -len(t)] for t in _TITLED if name.endswith(t)) or name
    parts = split_han_name(name)
    if parts is not None:
        return f"{parts[0]}医生" if zh else f"Dr {surname_latin(parts[0])}"
    if is_han(name) and len(name) == 1:  # a bare surname: 陈
        return f"{name}医生" if zh else f"Dr {surname_latin(name)}"
    if zh:
        return f"{name}医生"
    latin_surname = name.split()[-1] if " " in name and not _DOTS.search(name) else name
    return f"Dr {latin_surname}"
