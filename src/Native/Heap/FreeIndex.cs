// The free index: a tree of an arena's free blocks, ordered by address, where
// every node also carries a bound on the largest free size in its subtree (as
// Linux's vmalloc tree carries the exact maximum). The lowest-addressed block
// that fits is found by a descent: go left while the left subtree may hold a big
// enough block, else take this node if it fits, else go right. That is exactly the
// block a walk of an address-ordered free list would stop at, in O(log n).
//
// The bound is an *upper* bound, kept lazily: when a block shrinks (every
// allocation carves the top of one) nothing in the tree is touched, so the bounds
// above it may be too high. A search that follows a too-high bound into a subtree
// without a fit comes back out and tightens that subtree's bound on the way, so
// each stale bound costs one detour, once. Growth (coalescing) raises the bounds
// on its path at once, so a bound is never too low, and the search never misses.
//
// Balance: a treap. Each node's priority is a hash of its address (no storage
// needed), and parents have higher priority than children, which keeps the
// expected depth logarithmic whatever order blocks are freed in.
//
// The node lives in the first 16 payload bytes of the free block:
//   word 0: left child address  | (subtree max units >> 16) << 48
//   word 1: right child address | (subtree max units & 0xFFFF) << 48
// User-space addresses on x86-64 fit in 47 bits, so the top 16 bits of each link
// are free to carry half of the 32-bit subtree maximum. This keeps the smallest
// block at 32 bytes (header + node), like glibc's.

using System.Runtime.CompilerServices;

namespace Konfiscator.Native.Heap
{
    internal static unsafe class FreeIndex
    {
        private const ulong AddressMask = (1UL << 48) - 1;

        // ---- node fields ----

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong* Node(Block* b) => (ulong*)Blocks.Payload(b);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* Left(Block* b) => (Block*)(Node(b)[0] & AddressMask);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* Right(Block* b) => (Block*)(Node(b)[1] & AddressMask);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint MaxUnits(Block* b) => b == null ? 0 : (uint)((Node(b)[0] >> 48) << 16 | (Node(b)[1] >> 48));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SetLinks(Block* b, Block* left, Block* right, uint max)
        {
            ulong* node = Node(b);
            node[0] = (ulong)left | ((ulong)(max >> 16) << 48);
            node[1] = (ulong)right | ((ulong)(max & 0xFFFF) << 48);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SetLeft(Block* b, Block* left) => SetLinks(b, left, Right(b), MaxUnits(b));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SetRight(Block* b, Block* right) => SetLinks(b, Left(b), right, MaxUnits(b));

        /// <summary>Recomputes b's bound from its own size and its children's bounds.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Refresh(Block* b)
        {
            Block* l = Left(b), r = Right(b);
            uint max = b->SizeUnits;
            uint lm = MaxUnits(l), rm = MaxUnits(r);
            if (lm > max) max = lm;
            if (rm > max) max = rm;
            SetLinks(b, l, r, max);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong Priority(Block* b)
        {
            ulong x = (ulong)b;
            x ^= x >> 31;
            x *= 0x7FB5D329728EA185;
            x ^= x >> 27;
            x *= 0x81DADEF4BC2DD44D;
            x ^= x >> 33;
            return x;
        }

        // ---- rotations: each keeps the in-order (address) sequence ----

        private static Block* RotateRight(Block* top)
        {
            Block* l = Left(top);
            SetLeft(top, Right(l));
            Refresh(top);
            SetRight(l, top);
            Refresh(l);
            return l;
        }

        private static Block* RotateLeft(Block* top)
        {
            Block* r = Right(top);
            SetRight(top, Left(r));
            Refresh(top);
            SetLeft(r, top);
            Refresh(r);
            return r;
        }

        // ---- operations (the arena lock is held) ----

        /// <summary>Adds free block b; returns the new root.</summary>
        public static Block* Insert(Block* root, Block* b)
        {
            if (root == null)
            {
                SetLinks(b, null, null, b->SizeUnits);
                return b;
            }
            if (b < root)
            {
                SetLeft(root, Insert(Left(root), b));
                if (Priority(Left(root)) > Priority(root)) return RotateRight(root);
            }
            else
            {
                SetRight(root, Insert(Right(root), b));
                if (Priority(Right(root)) > Priority(root)) return RotateLeft(root);
            }
            Refresh(root);
            return root;
        }

        /// <summary>Removes free block b (which must be in the tree); returns the new root.</summary>
        public static Block* Remove(Block* root, Block* b)
        {
            if (root == b)
                return Join(Left(b), Right(b));
            if (b < root) SetLeft(root, Remove(Left(root), b));
            else SetRight(root, Remove(Right(root), b));
            Refresh(root);
            return root;
        }

        /// <summary>Puts free block <paramref name="nw"/> in the place of <paramref name="old"/>
        /// (which leaves the tree) in one descent, where a Remove and an Insert would take
        /// two: used when a freed block absorbs its free upper neighbour. Nothing in the
        /// tree lies between the two addresses, so every comparison on the way agrees
        /// for both; only the treap's priority order needs restoring, by rotations below
        /// (sift down) and above (on the way back up, as in Insert).</summary>
        public static Block* Replace(Block* node, Block* old, Block* nw) =>
            Replace(node, old, nw, Left(old), Right(old), MaxUnits(old));

        /// <summary>Replace, with old's links read beforehand by the caller, for when nw's
        /// header overwrites old's node (nw only 16 bytes above old).</summary>
        public static Block* Replace(Block* node, Block* old, Block* nw, Block* oldLeft, Block* oldRight, uint oldBound)
        {
            if (node == old)
            {
                uint bound = oldBound > nw->SizeUnits ? oldBound : nw->SizeUnits;
                SetLinks(nw, oldLeft, oldRight, bound);
                return SiftDown(nw);
            }
            if (old < node)
            {
                SetLeft(node, Replace(Left(node), old, nw, oldLeft, oldRight, oldBound));
                if (Priority(Left(node)) > Priority(node)) return RotateRight(node);
            }
            else
            {
                SetRight(node, Replace(Right(node), old, nw, oldLeft, oldRight, oldBound));
                if (Priority(Right(node)) > Priority(node)) return RotateLeft(node);
            }
            Refresh(node);
            return node;
        }

        /// <summary>Rotates n down below any child of higher priority; returns the subtree's new root.</summary>
        private static Block* SiftDown(Block* n)
        {
            Block* l = Left(n), r = Right(n);
            ulong pn = Priority(n);
            ulong pl = l != null ? Priority(l) : 0, pr = r != null ? Priority(r) : 0;
            if (pl <= pn && pr <= pn)
            {
                Refresh(n);
                return n;
            }
            Block* top;
            if (pl > pr)
            {
                top = RotateRight(n);                 // l on top, n its right child
                SetRight(top, SiftDown(Right(top)));
            }
            else
            {
                top = RotateLeft(n);                  // r on top, n its left child
                SetLeft(top, SiftDown(Left(top)));
            }
            Refresh(top);
            return top;
        }

        /// <summary>Joins two trees where every address in <paramref name="low"/> is below every one in <paramref name="high"/>.</summary>
        private static Block* Join(Block* low, Block* high)
        {
            if (low == null) return high;
            if (high == null) return low;
            if (Priority(low) > Priority(high))
            {
                SetRight(low, Join(Right(low), high));
                Refresh(low);
                return low;
            }
            SetLeft(high, Join(low, Left(high)));
            Refresh(high);
            return high;
        }

        /// <summary>After b grew in place (its address did not change): raises the bounds
        /// on the path from the root down to b. A shrink needs nothing (see above).</summary>
        public static void Grew(Block* root, Block* b)
        {
            uint size = b->SizeUnits;
            for (Block* node = root; node != null; node = b < node ? Left(node) : Right(node))
            {
                if (MaxUnits(node) < size) SetLinks(node, Left(node), Right(node), size);
                if (node == b) return;
            }
        }

        /// <summary>The lowest-addressed block of at least <paramref name="units"/>, or null.
        /// Tightens every bound that led it astray.</summary>
        public static Block* FirstFit(Block* node, uint units)
        {
            if (node == null || MaxUnits(node) < units) return null;
            Block* left = Left(node);
            if (left != null && MaxUnits(left) >= units)
            {
                Block* found = FirstFit(left, units);
                if (found != null) return found;
            }
            if (node->SizeUnits >= units) return node;
            Block* right = Right(node);
            if (right != null && MaxUnits(right) >= units)
            {
                Block* found = FirstFit(right, units);
                if (found != null) return found;
            }
            // Nothing here fits: the bound was stale. The children's bounds are now
            // below units, so recomputing from them tightens this one.
            Refresh(node);
            return null;
        }

        /// <summary>The largest free size in the tree, exactly: a branch-and-bound walk
        /// that skips every subtree whose bound cannot beat the best size found so far,
        /// and tightens the bounds it passes.</summary>
        public static uint Largest(Block* root)
        {
            uint best = 0;
            TightenAbove(root, ref best);
            return best;
        }

        private static void TightenAbove(Block* node, ref uint best)
        {
            if (node == null || MaxUnits(node) <= best) return;
            if (node->SizeUnits > best) best = node->SizeUnits;
            Block* left = Left(node), right = Right(node);
            // The child with the higher bound first: it is the likelier home of the maximum.
            if (MaxUnits(left) >= MaxUnits(right)) { TightenAbove(left, ref best); TightenAbove(right, ref best); }
            else { TightenAbove(right, ref best); TightenAbove(left, ref best); }
            Refresh(node);
        }

        /// <summary>The lowest-addressed block above <paramref name="after"/> of at least <paramref name="units"/>, or null.</summary>
        public static Block* FirstFitAbove(Block* node, uint units, Block* after)
        {
            if (node == null || MaxUnits(node) < units) return null;
            if (node > after)
            {
                Block* found = FirstFitAbove(Left(node), units, after);
                if (found != null) return found;
                if (node->SizeUnits >= units) return node;
            }
            return FirstFitAbove(Right(node), units, after);
        }

        /// <summary>True if b is reachable from root by address search (for the heap check).</summary>
        public static bool Contains(Block* root, Block* b)
        {
            for (Block* node = root; node != null; node = b < node ? Left(node) : Right(node))
                if (node == b) return true;
            return false;
        }
    }
}
