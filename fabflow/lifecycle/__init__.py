"""The order lifecycle: states, allowed transitions, retry policy and operators ' actions.

Pure: data in, decisions out. The store applies decisions as guarded updates; nothing here
does I/O.
"""
