#!/usr/bin/python3
# The independent reading of an EVTX file for tests/evtx: python-evtx (Debian python3-evtx)
# renders each record, and its fields are printed as JSON Lines, one record a line:
#   {"index": N, "system": {"EventID": "4624", "Provider@Name": "...", ...},
#    "data": [[name, value], ...], "user_data": [[path, value], ...]}
# or {"index": N, "error": "..."} when python-evtx cannot render the record.
# System keys are "Element" (its text) and "Element@Attribute"; data is EventData's <Data> and
# <Binary> children in order (name "" when unnamed, "Binary" for <Binary>); user_data is every
# leaf under UserData as "Parent/Child" paths.
import json
import sys
import xml.etree.ElementTree as ET

import Evtx.Evtx as evtx

NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"


def local(tag):
    return tag.rsplit("}", 1)[-1]


def leaves(element, path, out):
    children = list(element)
    if not children:
        out.append([path, element.text or ""])
    for child in children:
        leaves(child, path + "/" + local(child.tag), out)


def fields(xml):
    root = ET.fromstring(xml)
    system, data, user_data = {}, [], []
    for child in root.find(NS + "System"):
        name = local(child.tag)
        if child.text and child.text.strip():
            system[name] = child.text
        for attribute, value in child.attrib.items():
            system[name + "@" + local(attribute)] = value
    event_data = root.find(NS + "EventData")
    if event_data is not None:
        for child in event_data:
            name = "Binary" if local(child.tag) == "Binary" else child.attrib.get("Name", "")
            data.append([name, child.text or ""])
    ud = root.find(NS + "UserData")
    if ud is not None:
        for child in ud:
            leaves(child, local(child.tag), user_data)
    return {"system": system, "data": data, "user_data": user_data}


def main():
    with evtx.Evtx(sys.argv[1]) as log:
        for index, record in enumerate(log.records()):
            try:
                line = fields(record.xml())
            except Exception as e:  # noqa: BLE001 - any failure is reported for that record
                line = {"error": "%s: %s" % (type(e).__name__, e)}
            line["index"] = index
            print(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    main()
