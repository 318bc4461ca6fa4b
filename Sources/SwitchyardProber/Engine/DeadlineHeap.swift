// A min-heap of items by due time (monotonic ms): the prober's round schedule
// (ProbeEngine) and its probe timeouts (PlainProbes). Stale entries are left in place and
// skipped by the caller, so removal is never needed.
struct DeadlineHeap<Item> {
    private var heap: [(due: Int64, item: Item)] = []

    var nextDue: Int64? { heap.first?.due }
    var count: Int { heap.count }

    mutating func push(due: Int64, item: Item) {
        heap.append((due, item))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if heap[parent].due <= heap[i].due { break }
            heap.swapAt(parent, i)
            i = parent
        }
    }

    /// The earliest entry if it is due at `now`, else nil.
    mutating func popDue(now: Int64) -> (due: Int64, item: Item)? {
        guard let first = heap.first, first.due <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < heap.count, heap[l].due < heap[m].due { m = l }
                if r < heap.count, heap[r].due < heap[m].due { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}
